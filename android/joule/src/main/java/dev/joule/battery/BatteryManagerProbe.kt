package dev.joule.battery

import android.content.Context
import android.content.Intent
import android.content.IntentFilter
import android.os.BatteryManager
import android.os.Build
import android.os.PowerManager
import dev.joule.BatteryState
import dev.joule.EnergyProbe
import dev.joule.ProbeSample
import dev.joule.Thermal

/**
 * Reads the phone's battery for the core's energy meter. Only sensor reads happen here; units
 * and signs are normalised by [BatteryQuirks] (JVM-tested), integration and windows by the core.
 * Called from the meter's sampling thread, so it must stay quick and never touch the UI.
 */
class BatteryManagerProbe(private val context: Context) : EnergyProbe {
    private val battery = context.getSystemService(Context.BATTERY_SERVICE) as BatteryManager
    private val power = context.getSystemService(Context.POWER_SERVICE) as PowerManager

    override fun name(): String = "android-batterymanager"

    override fun read(): ProbeSample {
        val s = BatteryQuirks.sample(raw())
        return ProbeSample(
            powerW = s.dischargeWatts,
            currentA = s.dischargeAmps,
            voltageV = s.volts,
            energyRemainingJ = s.energyJoules,
            status = when (s.state) {
                ChargeState.DISCHARGING -> BatteryState.DISCHARGING
                ChargeState.CHARGING -> BatteryState.CHARGING
                ChargeState.FULL -> BatteryState.FULL
                ChargeState.NOT_CHARGING -> BatteryState.NOT_CHARGING
                ChargeState.UNKNOWN -> BatteryState.UNKNOWN
            },
            thermal = when (ThermalQuirks.level(thermalStatus())) {
                ThermalLevel.NOMINAL -> Thermal.NOMINAL
                ThermalLevel.FAIR -> Thermal.FAIR
                ThermalLevel.SERIOUS -> Thermal.SERIOUS
                ThermalLevel.CRITICAL -> Thermal.CRITICAL
                null -> null
            },
        )
    }

    fun raw(): RawBattery {
        // The sticky broadcast: registering a null receiver returns the last intent at once.
        val sticky: Intent? = context.registerReceiver(null, IntentFilter(Intent.ACTION_BATTERY_CHANGED))
        return RawBattery(
            currentNow = battery.getIntProperty(BatteryManager.BATTERY_PROPERTY_CURRENT_NOW),
            voltageExtra = sticky?.getIntExtra(BatteryManager.EXTRA_VOLTAGE, -1) ?: -1,
            chargeCounter = battery.getIntProperty(BatteryManager.BATTERY_PROPERTY_CHARGE_COUNTER),
            energyCounter = battery.getLongProperty(BatteryManager.BATTERY_PROPERTY_ENERGY_COUNTER),
            status = sticky?.getIntExtra(BatteryManager.EXTRA_STATUS, BatteryStatusCode.UNKNOWN)
                ?: BatteryStatusCode.UNKNOWN,
            plugged = (sticky?.getIntExtra(BatteryManager.EXTRA_PLUGGED, 0) ?: 0) != 0,
        )
    }

    /** PowerManager thermal status from API 29 (Q); null before. */
    private fun thermalStatus(): Int? =
        if (Build.VERSION.SDK_INT >= 29) power.currentThermalStatus else null
}
