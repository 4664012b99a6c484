// Compile-time stub for scripts/check-android: the generated bindings use java.lang.ref.Cleaner
// (Android API 33) only after checking at run time that the class exists, and fall back to
// JNA's cleaner on older phones. API 23's android.jar lacks it, so the check supplies this.
package java.lang.ref;

public final class Cleaner {
    private Cleaner() {}

    public static Cleaner create() {
        throw new RuntimeException("Stub!");
    }

    public Cleanable register(Object obj, Runnable action) {
        throw new RuntimeException("Stub!");
    }

    public interface Cleanable {
        void clean();
    }
}
