#!/usr/bin/env bash
# Kotlin on the JVM for scripts/test-kotlin and scripts/check-android, on a fresh Debian
# machine: OpenJDK 17, JNA, JUnit 4 and 5 and kotlinx-coroutines from Debian (apt), kotlinc
# from the npm package kotlin-compiler (a pinned version, cached under ~/.cache/joule/kotlin
# or $JOULE_KOTLIN_CACHE). Sourced; sets `kotlinc` and `kotlin_lib` (the folder of
# kotlin-stdlib.jar).

kotlin_version=2.4.20

kotlin_ensure() {
  local sudo_cmd="" need=()
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  command -v javac >/dev/null || need+=(openjdk-17-jdk-headless)
  command -v npm >/dev/null || need+=(npm)
  [ -f /usr/share/java/jna.jar ] || need+=(libjna-java)
  [ -f /usr/share/java/junit4.jar ] || need+=(junit4)
  [ -f /usr/share/java/junit-platform-console-standalone.jar ] || need+=(junit5)
  [ -f /usr/share/java/kotlinx-coroutines-core.jar ] || need+=(libkotlinx-coroutines-java)
  if [ ${#need[@]} -gt 0 ]; then
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends "${need[@]}"
  fi
  local dir=${JOULE_KOTLIN_CACHE:-$HOME/.cache/joule/kotlin}
  kotlinc=$dir/node_modules/kotlin-compiler/bin/kotlinc
  if [ ! -x "$kotlinc" ]; then
    mkdir -p "$dir"
    npm install --no-audit --no-fund --silent --prefix "$dir" "kotlin-compiler@$kotlin_version"
  fi
  [ -x "$kotlinc" ] || { echo "kotlin: npm left no $kotlinc" >&2; return 1; }
  kotlin_lib=$dir/node_modules/kotlin-compiler/lib
  [ -f "$kotlin_lib/kotlin-stdlib.jar" ] || { echo "kotlin: no kotlin-stdlib.jar in $kotlin_lib" >&2; return 1; }
}
