package dev.joule.battery

// Plain Kotlin (no Android imports) so the JVM tests cover it: turns the raw numbers that
// BatteryManager and the sticky ACTION_BATTERY_CHANGED intent report into SI units with one sign
// convention (positive = power drawn from the battery). Devices disagree on units and signs; each
// rule below names the quirk it absorbs.

/** Android's "property not supported" values for getIntProperty / getLongProperty. */
const val UNSUPPORTED_INT: Int = Int.MIN_VALUE
const val UNSUPPORTED_LONG: Long = Long.MIN_VALUE

/** BatteryManager.BATTERY_STATUS_* values (copied so this file needs no Android import). */
object BatteryStatusCode {
    const val UNKNOWN = 1
    const val CHARGING = 2
    const val DISCHARGING = 3
    const val NOT_CHARGING = 4
    const val FULL = 5
}

enum class ChargeState { DISCHARGING, CHARGING, FULL, NOT_CHARGING, UNKNOWN }

/** Raw readings exactly as the platform returned them (unsupported values included). */
data class RawBattery(
    val currentNow: Int,
    val voltageExtra: Int,
    val chargeCounter: Int,
    val energyCounter: Long,
    val status: Int,
    val plugged: Boolean,
)

/** One reading in SI units; null where the device does not report the quantity. */
data class BatterySample(
    /** Current leaving the battery in amperes (negative while it charges). */
    val dischargeAmps: Double?,
    val volts: Double?,
    /** Power leaving the battery in watts (negative while it charges). */
    val dischargeWatts: Double?,
    /** Remaining charge in coulombs (CHARGE_COUNTER). */
    val chargeCoulombs: Double?,
    /** Remaining energy in joules (ENERGY_COUNTER; few devices have it). */
    val energyJoules: Double?,
    val state: ChargeState,
) {
    /** A discharge measurement is meaningful only while nothing charges the battery. */
    val measurable: Boolean get() = state == ChargeState.DISCHARGING && dischargeWatts != null
}

object BatteryQuirks {
    /**
     * CURRENT_NOW is documented in microamperes, but some devices report milliamperes. A phone
     * running a model draws well over 20 mA, so a magnitude below 20 000 can only be mA (a
     * µA reading that small would be 20 mA, i.e. an idle screen-off phone).
     */
    const val MILLIAMP_CEILING = 20_000

    fun amps(rawCurrent: Int): Double? {
        if (rawCurrent == UNSUPPORTED_INT || rawCurrent == 0) return null
        val magnitude = kotlin.math.abs(rawCurrent.toLong())
        return if (magnitude < MILLIAMP_CEILING) rawCurrent / 1_000.0 else rawCurrent / 1_000_000.0
    }

    /**
     * EXTRA_VOLTAGE is documented in millivolts; some devices give volts (e.g. 4) and a few
     * microvolts (e.g. 3 900 000). A Li-ion cell sits between 2.5 and 5 V in every case.
     */
    fun volts(rawVoltage: Int): Double? = when {
        rawVoltage <= 0 -> null
        rawVoltage < 100 -> rawVoltage.toDouble()
        rawVoltage < 100_000 -> rawVoltage / 1_000.0
        else -> rawVoltage / 1_000_000.0
    }?.takeIf { it in 2.5..5.5 }

    fun state(status: Int, plugged: Boolean): ChargeState = when (status) {
        BatteryStatusCode.CHARGING -> ChargeState.CHARGING
        BatteryStatusCode.FULL -> ChargeState.FULL
        BatteryStatusCode.NOT_CHARGING -> ChargeState.NOT_CHARGING
        BatteryStatusCode.DISCHARGING ->
            if (plugged) ChargeState.NOT_CHARGING else ChargeState.DISCHARGING
        else -> if (plugged) ChargeState.NOT_CHARGING else ChargeState.UNKNOWN
    }

    /**
     * The documented sign is "positive = current into the battery", but several vendors report
     * discharge as positive. The charge state decides: while discharging, the current leaves the
     * battery whatever its sign; while charging it enters it.
     */
    fun dischargeAmps(rawCurrent: Int, state: ChargeState): Double? {
        val a = amps(rawCurrent) ?: return null
        val magnitude = kotlin.math.abs(a)
        return when (state) {
            ChargeState.DISCHARGING -> magnitude
            ChargeState.CHARGING -> -magnitude
            else -> -a // documented convention when the state does not tell
        }
    }

    /** CHARGE_COUNTER is µAh (a few devices: mAh, recognisable as < 20 000 for a phone cell). */
    fun chargeCoulombs(rawCounter: Int): Double? {
        if (rawCounter == UNSUPPORTED_INT || rawCounter <= 0) return null
        val microAmpHours = if (rawCounter < 20_000) rawCounter * 1_000.0 else rawCounter.toDouble()
        return microAmpHours * 1e-6 * 3_600.0
    }

    /** ENERGY_COUNTER is nWh; unsupported devices return Long.MIN_VALUE or 0. */
    fun energyJoules(rawCounter: Long): Double? {
        if (rawCounter == UNSUPPORTED_LONG || rawCounter <= 0) return null
        return rawCounter * 1e-9 * 3_600.0
    }

    fun sample(raw: RawBattery): BatterySample {
        val state = state(raw.status, raw.plugged)
        val amps = dischargeAmps(raw.currentNow, state)
        val volts = volts(raw.voltageExtra)
        val watts = if (amps != null && volts != null) amps * volts else null
        return BatterySample(
            dischargeAmps = amps,
            volts = volts,
            dischargeWatts = watts,
            chargeCoulombs = chargeCoulombs(raw.chargeCounter),
            energyJoules = energyJoules(raw.energyCounter),
            state = state,
        )
    }
}

/** The core's four thermal levels. */
enum class ThermalLevel { NOMINAL, FAIR, SERIOUS, CRITICAL }

object ThermalQuirks {
    /**
     * PowerManager.THERMAL_STATUS_* (API 29+): NONE 0, LIGHT 1, MODERATE 2, SEVERE 3,
     * CRITICAL 4, EMERGENCY 5, SHUTDOWN 6. Older devices have no status: null.
     */
    fun level(status: Int?): ThermalLevel? = when (status) {
        null -> null
        0 -> ThermalLevel.NOMINAL
        1, 2 -> ThermalLevel.FAIR
        3 -> ThermalLevel.SERIOUS
        in 4..6 -> ThermalLevel.CRITICAL
        else -> null
    }
}
