// Compile-time stub for scripts/check-android, used only when the kotlinx-coroutines jar at hand
// (Debian's is 1.0.1) predates this opt-in marker (1.5), which the generated bindings import.
// The app itself builds against the coroutines version of gradle/libs.versions.toml.
package kotlinx.coroutines

@RequiresOptIn(level = RequiresOptIn.Level.WARNING)
@Retention(AnnotationRetention.BINARY)
annotation class DelicateCoroutinesApi
