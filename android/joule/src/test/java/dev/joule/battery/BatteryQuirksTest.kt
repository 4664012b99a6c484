package dev.joule.battery

import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Test

class BatteryQuirksTest {
    private val eps = 1e-9

    private fun raw(
        current: Int = -450_000,
        voltage: Int = 3_900,
        charge: Int = 2_500_000,
        energy: Long = UNSUPPORTED_LONG,
        status: Int = BatteryStatusCode.DISCHARGING,
        plugged: Boolean = false,
    ) = RawBattery(current, voltage, charge, energy, status, plugged)

    @Test fun microampsDocumentedSignGiveDischargeWatts() {
        val s = BatteryQuirks.sample(raw(current = -450_000, voltage = 3_900))
        assertEquals(0.45, s.dischargeAmps!!, eps)
        assertEquals(3.9, s.volts!!, eps)
        assertEquals(0.45 * 3.9, s.dischargeWatts!!, eps)
        assertTrue(s.measurable)
    }

    @Test fun vendorPositiveDischargeIsTheSameDraw() {
        val documented = BatteryQuirks.sample(raw(current = -450_000))
        val vendor = BatteryQuirks.sample(raw(current = 450_000))
        assertEquals(documented.dischargeWatts!!, vendor.dischargeWatts!!, eps)
    }

    @Test fun milliampDevicesAreScaled() {
        assertEquals(0.45, BatteryQuirks.sample(raw(current = -450)).dischargeAmps!!, eps)
        assertEquals(1.2, BatteryQuirks.amps(1_200)!!, eps)
        assertEquals(0.025, BatteryQuirks.amps(25_000)!!, eps) // 25 000 µA, not mA
    }

    @Test fun chargingIsNegativeAndNotMeasurable() {
        val s = BatteryQuirks.sample(raw(current = 800_000, status = BatteryStatusCode.CHARGING, plugged = true))
        assertEquals(ChargeState.CHARGING, s.state)
        assertEquals(-0.8, s.dischargeAmps!!, eps)
        assertFalse(s.measurable)
        // Vendors that flip the sign while charging still read as charging.
        val flipped = BatteryQuirks.sample(raw(current = -800_000, status = BatteryStatusCode.CHARGING))
        assertEquals(-0.8, flipped.dischargeAmps!!, eps)
    }

    @Test fun pluggedButDischargingCountsAsNotCharging() {
        val s = BatteryQuirks.sample(raw(status = BatteryStatusCode.DISCHARGING, plugged = true))
        assertEquals(ChargeState.NOT_CHARGING, s.state)
        assertFalse(s.measurable)
    }

    @Test fun unknownStatusKeepsTheDocumentedSign() {
        val s = BatteryQuirks.sample(raw(current = -300_000, status = BatteryStatusCode.UNKNOWN))
        assertEquals(0.3, s.dischargeAmps!!, eps)
        assertEquals(ChargeState.UNKNOWN, s.state)
    }

    @Test fun voltageUnitsAreRecognised() {
        assertEquals(4.0, BatteryQuirks.volts(4)!!, eps)
        assertEquals(3.85, BatteryQuirks.volts(3_850)!!, eps)
        assertEquals(3.9, BatteryQuirks.volts(3_900_000)!!, eps)
        assertNull(BatteryQuirks.volts(0))
        assertNull(BatteryQuirks.volts(-1))
        assertNull(BatteryQuirks.volts(9_000)) // 9 V is no phone cell
    }

    @Test fun unsupportedPropertiesAreAbsentNotZero() {
        val s = BatteryQuirks.sample(
            raw(current = UNSUPPORTED_INT, charge = UNSUPPORTED_INT, energy = UNSUPPORTED_LONG),
        )
        assertNull(s.dischargeAmps)
        assertNull(s.dischargeWatts)
        assertNull(s.chargeCoulombs)
        assertNull(s.energyJoules)
        assertFalse(s.measurable)
        assertNull(BatteryQuirks.energyJoules(0))
    }

    @Test fun countersConvertToSi() {
        // 2 500 000 µAh = 2.5 Ah = 9000 C; 1000 mAh reported as mAh = 3600 C.
        assertEquals(9_000.0, BatteryQuirks.chargeCoulombs(2_500_000)!!, 1e-6)
        assertEquals(3_600.0, BatteryQuirks.chargeCoulombs(1_000)!!, 1e-6)
        // 10 Wh = 1e10 nWh = 36 000 J.
        assertEquals(36_000.0, BatteryQuirks.energyJoules(10_000_000_000L)!!, 1e-6)
    }

    @Test fun thermalStatusMapsToCoreLevels() {
        assertNull(ThermalQuirks.level(null))
        assertEquals(ThermalLevel.NOMINAL, ThermalQuirks.level(0))
        assertEquals(ThermalLevel.FAIR, ThermalQuirks.level(2))
        assertEquals(ThermalLevel.SERIOUS, ThermalQuirks.level(3))
        assertEquals(ThermalLevel.CRITICAL, ThermalQuirks.level(6))
        assertNull(ThermalQuirks.level(42))
    }
}
