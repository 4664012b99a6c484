#if canImport(UIKit)
    import Foundation
    import UIKit

    /// iOS battery probe: `UIDevice` battery level × the rated capacity the user entered, the
    /// charging state and `ProcessInfo.thermalState`. Coarse by nature (the level moves in 1 %
    /// steps) and named so in every report; use it over long windows such as the battery bench.
    public final class UIDeviceBatteryProbe: EnergyProbe, @unchecked Sendable {
        private let ratedWattHours: Double

        public init(ratedWattHours: Double) {
            self.ratedWattHours = ratedWattHours
            DispatchQueue.main.async { UIDevice.current.isBatteryMonitoringEnabled = true }
        }

        public func name() -> String { CoarseBattery.probeName }

        public func read() throws -> ProbeSample {
            // UIDevice's battery properties may be read off the main thread.
            let device = UIDevice.current
            let state = CoarseBattery.State(rawValue: device.batteryState.rawValue) ?? .unknown
            return try CoarseBattery.reading(
                level: device.batteryLevel, state: state, ratedWattHours: ratedWattHours,
                thermalRawValue: ProcessInfo.processInfo.thermalState.rawValue)
        }
    }

    public func makeBatteryProbe(ratedWattHours: Double) -> EnergyProbe? {
        UIDeviceBatteryProbe(ratedWattHours: ratedWattHours)
    }
#else
    /// No battery API off iOS: the core falls back to its own sources (RAPL, sysfs, estimate).
    public func makeBatteryProbe(ratedWattHours: Double) -> EnergyProbe? { nil }
#endif
