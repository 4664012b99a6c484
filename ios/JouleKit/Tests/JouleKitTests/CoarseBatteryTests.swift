import XCTest

@testable import JouleKit

final class CoarseBatteryTests: XCTestCase {
    func testRemainingEnergyIsLevelTimesCapacity() {
        XCTAssertEqual(CoarseBattery.remainingJoules(level: 0.5, ratedWattHours: 12)!, 21_600, accuracy: 1e-6)
        XCTAssertEqual(CoarseBattery.remainingJoules(level: 1, ratedWattHours: 10)!, 36_000, accuracy: 1e-6)
    }

    func testUnknownLevelOrCapacityGivesNoReading() {
        XCTAssertNil(CoarseBattery.remainingJoules(level: -1, ratedWattHours: 12))
        XCTAssertNil(CoarseBattery.remainingJoules(level: 0.5, ratedWattHours: 0))
        XCTAssertNil(CoarseBattery.remainingJoules(level: 1.5, ratedWattHours: 12))
        XCTAssertNil(CoarseBattery.remainingJoules(level: 0.5, ratedWattHours: .nan))
    }

    func testWindowNeedsSeveralLevelSteps() {
        XCTAssertEqual(CoarseBattery.secondsPerStep(ratedWattHours: 12, watts: 3)!, 144, accuracy: 1e-9)
        XCTAssertNil(CoarseBattery.secondsPerStep(ratedWattHours: 12, watts: 0))
        XCTAssertEqual(CoarseBattery.relativeUncertainty(levelDrop: 0.05)!, 0.2, accuracy: 1e-12)
        XCTAssertNil(CoarseBattery.relativeUncertainty(levelDrop: 0))
    }

    func testThermalNamesAndCoarseLabel() {
        XCTAssertEqual(CoarseBattery.thermalName(rawValue: 0), "nominal")
        XCTAssertEqual(CoarseBattery.thermalName(rawValue: 3), "critical")
        XCTAssertEqual(CoarseBattery.thermalName(rawValue: 9), "unknown")
        XCTAssertTrue(CoarseBattery.probeName.contains("coarse"))
    }
}

final class CoarseReadingTests: XCTestCase {
    func testReadingCarriesRemainingEnergyStateAndThermal() throws {
        let r = try CoarseBattery.reading(level: 0.25, state: .unplugged, ratedWattHours: 10, thermalRawValue: 2)
        XCTAssertEqual(r.energyRemainingJ!, 9_000, accuracy: 1e-6)
        XCTAssertNil(r.powerW)
        XCTAssertEqual(r.status, .discharging)
        XCTAssertEqual(r.thermal, .serious)
    }

    func testUnknownLevelIsAnErrorNotZero() {
        XCTAssertThrowsError(
            try CoarseBattery.reading(level: -1, state: .unknown, ratedWattHours: 10, thermalRawValue: 0))
    }

    func testStatsLineShowsTheMethod() {
        let stats = ChatStats(
            tokensPerSecond: 23.44, generatedTokens: 10, joulesPerToken: 0.12,
            energyMethod: "platform: \(CoarseBattery.probeName)")
        XCTAssertEqual(stats.line, "23.4 t/s · 0.120 J/token · platform: ios-uidevice-battery-level (coarse)")
        let off = ChatStats(tokensPerSecond: 5, generatedTokens: 1, joulesPerToken: nil, energyMethod: "energy off")
        XCTAssertEqual(off.line, "5.0 t/s · J/token n/a · energy off")
    }
}
