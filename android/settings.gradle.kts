// Joule Android: the `joule` library module (generated uniffi Kotlin bindings, the native
// libraries under jniLibs, BatteryManagerProbe) and the `app` module (chat and battery bench).
// Run scripts/build-android-libs from the repository root before the first build.
pluginManagement {
    repositories {
        google()
        mavenCentral()
        gradlePluginPortal()
    }
}
dependencyResolutionManagement {
    repositoriesMode.set(RepositoriesMode.FAIL_ON_PROJECT_REPOS)
    repositories {
        google()
        mavenCentral()
    }
}
rootProject.name = "JouleAndroid"
include(":joule", ":app")
