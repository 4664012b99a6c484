// The embeddable library: generated uniffi bindings (package dev.joule, copied here by
// scripts/build-android-libs), libjoule_ffi.so per ABI under src/main/jniLibs, and the
// BatteryManager probe. An app depends on this module only.
plugins {
    alias(libs.plugins.android.library)
    alias(libs.plugins.kotlin.android)
}

android {
    namespace = "dev.joule"
    compileSdk = libs.versions.compileSdk.get().toInt()
    defaultConfig {
        minSdk = libs.versions.minSdk.get().toInt()
        consumerProguardFiles("consumer-rules.pro")
        ndk { abiFilters += listOf("arm64-v8a", "x86_64") }
    }
    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }
    kotlinOptions { jvmTarget = "17" }
}

dependencies {
    // JNA ships its Android native stubs in the aar artifact.
    implementation("${libs.jna.get()}@aar")
    implementation(libs.kotlinx.coroutines.core)
    testImplementation(libs.junit)
}
