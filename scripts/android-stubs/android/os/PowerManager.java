// Compile-time stub for scripts/check-android: API 23's android.os.PowerManager lacks the
// thermal status (API 29) that BatteryManagerProbe reads behind an SDK_INT check. It replaces
// the API 23 class on the check's classpath, so it declares every member the sources use.
// Never packaged: the app builds against the real SDK in Android Studio.
package android.os;

public final class PowerManager {
    public static final int THERMAL_STATUS_NONE = 0;
    public static final int THERMAL_STATUS_LIGHT = 1;
    public static final int THERMAL_STATUS_MODERATE = 2;
    public static final int THERMAL_STATUS_SEVERE = 3;
    public static final int THERMAL_STATUS_CRITICAL = 4;
    public static final int THERMAL_STATUS_EMERGENCY = 5;
    public static final int THERMAL_STATUS_SHUTDOWN = 6;

    private PowerManager() {}

    /** API 29. */
    public int getCurrentThermalStatus() {
        throw new RuntimeException("Stub!");
    }

    public boolean isPowerSaveMode() {
        throw new RuntimeException("Stub!");
    }
}
