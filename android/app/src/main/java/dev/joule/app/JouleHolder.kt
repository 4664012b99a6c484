package dev.joule.app

import android.content.Context
import dev.joule.ChatSession
import dev.joule.EnergyOptions
import dev.joule.EngineOptions
import dev.joule.JouleEngine
import dev.joule.battery.BatteryManagerProbe
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors

/**
 * The process's one engine and chat session, shared by both screens. Loading and generation
 * run on one worker thread; the screens only post work here and render what comes back.
 */
object JouleHolder {
    val worker: ExecutorService = Executors.newSingleThreadExecutor()

    @Volatile var engine: JouleEngine? = null
        private set
    @Volatile var session: ChatSession? = null
        private set
    @Volatile var modelPath: String? = null
        private set

    /** Blocking: call on [worker]. Replaces the loaded model; throws JouleException. */
    fun load(context: Context, path: String) {
        val probe = BatteryManagerProbe(context.applicationContext)
        // "auto": a readable sysfs battery first, then this probe, else an estimate; every
        // report says which was used.
        val loaded = JouleEngine.load(path, EngineOptions(energy = EnergyOptions(source = "auto")), probe)
        session?.close()
        engine?.close()
        engine = loaded
        session = loaded.newSession()
        modelPath = path
    }
}
