import Foundation

/// Plain arithmetic behind the iOS battery probe, kept free of UIKit so the Linux tests cover
/// it. iOS gives only the battery level (in 1 % steps on most devices, 5 % on some), the
/// charging state and `ProcessInfo.thermalState`; it never gives current, voltage or the
/// capacity. Energy is therefore the level's fall times the rated capacity the user enters,
/// and only means something over a window long enough for the level to move several steps:
/// the figures are always labelled coarse.
public enum CoarseBattery {
    /// The probe's name as reports show it; "coarse" is part of the name on purpose.
    public static let probeName = "ios-uidevice-battery-level (coarse)"

    /// Mirrors `UIDevice.BatteryState` (unknown 0, unplugged 1, charging 2, full 3).
    public enum State: Int {
        case unknown = 0, unplugged, charging, full
    }

    /// Energy left in joules, or nil when the level is unknown (-1, monitoring off, simulator)
    /// or the capacity is not a positive figure.
    public static func remainingJoules(level: Float, ratedWattHours: Double) -> Double? {
        guard level >= 0, level <= 1, ratedWattHours > 0, ratedWattHours.isFinite else { return nil }
        return Double(level) * ratedWattHours * 3600
    }

    /// Seconds for the level to fall one step at `watts`: a window shorter than a few of these
    /// says nothing. 12 Wh at 3 W and 1 % steps: 144 s.
    public static func secondsPerStep(ratedWattHours: Double, watts: Double, step: Double = 0.01) -> Double? {
        guard ratedWattHours > 0, watts > 0, step > 0 else { return nil }
        return ratedWattHours * 3600 * step / watts
    }

    /// Relative uncertainty of a window's energy: one level step against what the window saw.
    public static func relativeUncertainty(levelDrop: Double, step: Double = 0.01) -> Double? {
        guard levelDrop > 0 else { return nil }
        return step / levelDrop
    }

    /// `ProcessInfo.ThermalState` raw values (nominal 0, fair 1, serious 2, critical 3).
    public static func thermalName(rawValue: Int) -> String {
        switch rawValue {
        case 0: return "nominal"
        case 1: return "fair"
        case 2: return "serious"
        case 3: return "critical"
        default: return "unknown"
        }
    }
}

extension CoarseBattery {
    /// The reading handed to the core: remaining energy only (the core integrates its fall),
    /// plus the charging state and thermal level. Throws when the level is unknown.
    public static func reading(level: Float, state: State, ratedWattHours: Double, thermalRawValue: Int) throws
        -> ProbeSample
    {
        guard let joules = remainingJoules(level: level, ratedWattHours: ratedWattHours) else {
            throw JouleError.Energy(message: "battery level unknown (monitoring off or simulator)")
        }
        return ProbeSample(
            energyRemainingJ: joules, status: batteryStatus(state), thermal: thermalState(rawValue: thermalRawValue))
    }

    static func batteryStatus(_ state: State) -> BatteryState {
        switch state {
        case .unknown: return .unknown
        case .unplugged: return .discharging
        case .charging: return .charging
        case .full: return .full
        }
    }

    static func thermalState(rawValue: Int) -> Thermal? {
        switch rawValue {
        case 0: return .nominal
        case 1: return .fair
        case 2: return .serious
        case 3: return .critical
        default: return nil
        }
    }
}
