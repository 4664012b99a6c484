// Host tests of the Kotlin bindings against the real default model (scripts/test-kotlin).
// Environment: JOULE_MODEL (GGUF path), JOULE_BIN (the joule CLI), JOULE_TMP (scratch dir).
package dev.joule.test

import dev.joule.*
import java.io.File
import java.util.Collections
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.AfterAll
import org.junit.jupiter.api.Assertions
import org.junit.jupiter.api.Assertions.*
import org.junit.jupiter.api.BeforeAll
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.TestInstance

/** JUnit's Kotlin `assertThrows` (not in Debian's junit5 jar): the typed exception thrown by `body`. */
inline fun <reified T : Throwable> assertThrows(noinline body: () -> Any?): T =
    Assertions.assertThrows(T::class.java) { body() }

@TestInstance(TestInstance.Lifecycle.PER_CLASS)
class JouleTest {
    private val model = System.getenv("JOULE_MODEL") ?: error("JOULE_MODEL is not set")
    private val tmp = File(System.getenv("JOULE_TMP") ?: System.getProperty("java.io.tmpdir"))
    private val prompt = "Name three colours of the rainbow."
    private val threads = 2u
    private lateinit var engine: JouleEngine

    private fun options(source: String = "none", context: UInt? = null) =
        EngineOptions(context = context, threads = threads, energy = EnergyOptions(source = source))

    private fun short(n: UInt = 24u) = SendOptions(maxTokens = n)

    /** Collects streamed text and the threads it arrived on. */
    private class Collector : TokenListener {
        val pieces: MutableList<String> = Collections.synchronizedList(mutableListOf())
        val threadIds: MutableSet<Long> = Collections.synchronizedSet(mutableSetOf())
        override fun onText(text: String) {
            threadIds.add(Thread.currentThread().id)
            pieces.add(text)
        }
        fun text() = synchronized(pieces) { pieces.joinToString("") }
    }

    @BeforeAll
    fun load() {
        engine = JouleEngine.load(model, options())
    }

    @AfterAll
    fun close() {
        engine.close()
    }

    @Test
    fun infoDescribesTheModel() {
        val info = engine.info()
        assertEquals("llama", info.architecture)
        assertTrue(info.parameters in 100_000_000uL..200_000_000uL, "parameters ${info.parameters}")
        assertTrue(info.quantTypes.containsKey("Q4_1"), "quant types ${info.quantTypes}")
        assertEquals(File(model).length().toULong(), info.fileBytes)
        assertEquals(threads.toULong(), info.threads)
        assertTrue(info.context > 0uL && info.kernel.isNotEmpty() && info.precision == "fast")
    }

    @Test
    fun streamedTextEqualsTheCli() {
        val listener = Collector()
        val report = engine.newSession().use { it.send(prompt, short(), listener) }
        assertEquals(report.text, listener.text())
        assertEquals(24uL, report.generatedTokens)
        val cli = ProcessBuilder(
            System.getenv("JOULE_BIN") ?: error("JOULE_BIN is not set"), "run", "--json",
            "-m", model, "-t", "$threads", "-n", "24", "--seed", "0", "--energy", "none", prompt,
        ).redirectError(ProcessBuilder.Redirect.INHERIT).start()
        val out = cli.inputStream.bufferedReader().readText()
        assertEquals(0, cli.waitFor(), "joule run failed")
        // stdout: the answer, a newline, then the report as one JSON line.
        val body = out.trimEnd('\n')
        val cliText = body.substring(0, body.lastIndexOf('\n'))
        val cliJson = body.substring(body.lastIndexOf('\n') + 1)
        assertEquals(cliText, listener.text())
        assertTrue(cliJson.contains("\"generated_tokens\":24"), cliJson)
        assertTrue(report.reportJson.contains("\"generated_tokens\":24"), report.reportJson)
    }

    @Test
    fun cancelFromAnotherThreadStopsWithinOneToken() {
        val session = engine.newSession()
        val seen = StringBuilder()
        val askCancel = CountDownLatch(1)
        val cancelled = CountDownLatch(1)
        val canceller = Thread {
            askCancel.await()
            session.cancel()
            cancelled.countDown()
        }
        canceller.start()
        // The first callback hands over to the other thread and waits until it has
        // cancelled: the text seen then is what was generated when cancel() was called.
        val listener = object : TokenListener {
            override fun onText(text: String) {
                if (askCancel.count > 0) {
                    seen.append(text)
                    askCancel.countDown()
                    assertTrue(cancelled.await(30, TimeUnit.SECONDS))
                }
            }
        }
        val report = session.send(prompt, short(200u), listener)
        canceller.join()
        assertEquals(StopCause.CANCELLED, report.stopReason)
        val g = report.generatedTokens
        assertTrue(g in 1uL..199uL, "generated $g")
        // The same turn uncancelled up to g - 1 tokens must already have been seen.
        val before = engine.newSession().use { it.send(prompt, short((g - 1uL).toUInt())).text }
        assertTrue(seen.startsWith(before), "seen '$seen' does not contain '$before'")
        assertTrue(report.text.startsWith(seen.toString()))
        // The session goes on normally.
        assertEquals(StopCause.MAX_TOKENS, session.send("Thanks.", short(4u)).stopReason)
        session.close()
    }

    @Test
    fun missingFileIsModelNotFound() {
        val e = assertThrows<JouleException.ModelNotFound> {
            JouleEngine.load(File(tmp, "no-such-model.gguf").path, options())
        }
        assertTrue(e.message!!.contains("no-such-model.gguf"), e.message)
    }

    @Test
    fun corruptedGgufIsBadModelFile() {
        val bytes = File(model).readBytes()
        val cut = File(tmp, "truncated.gguf").apply { writeBytes(bytes.copyOf(bytes.size / 3)) }
        assertThrows<JouleException.BadModelFile> { JouleEngine.load(cut.path, options()) }
        val garbage = bytes.copyOf(4096).also { for (i in 8 until 24) it[i] = 0x7f }
        val bad = File(tmp, "garbage.gguf").apply { writeBytes(garbage) }
        assertThrows<JouleException.BadModelFile> { JouleEngine.load(bad.path, options()) }
    }

    @Test
    fun promptLongerThanTheContextIsContextOverflow() {
        JouleEngine.load(model, options(context = 64u)).use { small ->
            small.newSession().use { session ->
                val long = "word ".repeat(200)
                assertThrows<JouleException.ContextOverflow> { session.send(long, short()) }
                assertEquals("[]", Regex("\"messages\":(\\[.*])").find(session.historyJson())!!.groupValues[1])
                assertEquals(StopCause.MAX_TOKENS, session.send("Hi", short(4u)).stopReason)
            }
        }
    }

    @Test
    fun invalidSamplingIsInvalidArgument() {
        engine.newSession().use { session ->
            for (bad in listOf(
                SamplingOptions(temperature = -1f),
                SamplingOptions(topP = 0f),
                SamplingOptions(minP = 2f),
                SamplingOptions(repeatPenalty = 0f),
                SamplingOptions(temperature = Float.NaN),
            )) {
                assertThrows<JouleException.InvalidArgument> { session.setSampling(bad) }
            }
            session.setSampling(SamplingOptions(temperature = 0.7f, topK = 40u, seed = 7uL))
            assertEquals(4uL, session.send(prompt, short(4u)).generatedTokens)
        }
    }

    @Test
    fun malformedRestoreIsInvalidArgumentAndChangesNothing() {
        engine.newSession().use { session ->
            session.send(prompt, short(8u))
            val saved = session.historyJson()
            for (bad in listOf("", "{", "[1,2]", "{\"version\":9,\"messages\":[]}", "{\"version\":1,\"messages\":[{\"role\":\"user\"}]}")) {
                assertThrows<JouleException.InvalidArgument> { session.restore(bad) }
                assertEquals(saved, session.historyJson())
            }
            assertEquals(StopCause.MAX_TOKENS, session.send("And two more?", short(4u)).stopReason)
        }
    }

    /**
     * A listener that throws makes uniffi panic inside Rust (the callback has no error
     * type): the panic guard turns it into `Internal`, nothing crashes, the session lives on.
     */
    @Test
    fun aThrowingListenerBecomesInternalAndTheSessionLivesOn() {
        engine.newSession().use { session ->
            val thrower = object : TokenListener {
                override fun onText(text: String) = throw IllegalStateException("listener bug")
            }
            val e = assertThrows<JouleException.Internal> { session.send(prompt, short(), thrower) }
            assertTrue(e.message!!.contains("send panicked"), e.message)
            assertEquals(StopCause.MAX_TOKENS, session.send(prompt, short(4u)).stopReason)
        }
    }

    @Test
    fun listenerIsCalledFromRustThreadsThroughTheAsyncSend() {
        val reference = engine.newSession().use { it.send(prompt, short()).text }
        val listener = Collector()
        val session = engine.newSession()
        val report = runBlocking { session.sendAsync(prompt, short(), listener) }
        assertEquals(reference, report.text)
        assertEquals(reference, listener.text())
        assertFalse(listener.threadIds.contains(Thread.currentThread().id), "called on the test thread")
        session.close()
    }

    @Test
    fun twoSessionsOnOneEngineFromTwoThreads() {
        val reference = engine.newSession().use { it.send(prompt, short()).text }
        val results = Collections.synchronizedList(mutableListOf<String>())
        val errors = Collections.synchronizedList(mutableListOf<Throwable>())
        val workers = (0 until 2).map {
            Thread {
                try {
                    engine.newSession().use { s -> results.add(s.send(prompt, short(), Collector()).text) }
                } catch (t: Throwable) {
                    errors.add(t)
                }
            }
        }
        workers.forEach { it.start() }
        workers.forEach { it.join() }
        assertEquals(emptyList<Throwable>(), errors)
        assertEquals(listOf(reference, reference), results)
    }

    @Test
    fun restoredHistoryContinuesTheSameConversation() {
        val second = "Now name one more."
        val straight = engine.newSession().use {
            it.send(prompt, short(16u))
            it.send(second, short(16u)).text
        }
        val saved = engine.newSession().use {
            it.send(prompt, short(16u))
            it.historyJson()
        }
        val restored = engine.newSession().use {
            it.restore(saved)
            assertEquals(saved, it.historyJson())
            it.send(second, short(16u)).text
        }
        assertEquals(straight, restored)
    }

    /** A probe reporting a constant 3.0 W, as an app's battery sensor would. */
    private class ConstantProbe : EnergyProbe {
        val reads = java.util.concurrent.atomic.AtomicInteger()
        override fun name() = "kotlin-constant-3w"
        override fun read(): ProbeSample {
            reads.incrementAndGet()
            return ProbeSample(powerW = 3.0, status = BatteryState.DISCHARGING, thermal = Thermal.NOMINAL)
        }
    }

    @Test
    fun aKotlinProbeFeedsTheMeter() {
        val probe = ConstantProbe()
        JouleEngine.load(model, options(source = "platform"), probe).use { metered ->
            assertTrue(metered.info().energySource!!.contains("kotlin-constant-3w"))
            val report = metered.newSession().use { it.send(prompt, short(32u)) }
            val energy = report.energy!!
            assertEquals("platform", energy.sourceKind)
            assertEquals(EnergyMethod.MEASURED, energy.method)
            assertTrue(energy.source.contains("kotlin-constant-3w"), energy.source)
            for (w in listOf(energy.prefill, energy.decode)) {
                assertEquals(3.0, w.avgWatts, 0.06, "${w.name} watts")
                assertEquals(Thermal.NOMINAL, w.quality.thermalState)
            }
            assertEquals(3.0, energy.decodeAvgWatts, 0.06)
            assertTrue(probe.reads.get() >= 4, "probe read ${probe.reads.get()} times")
        }
    }

    @Test
    fun energyBenchSubtractsTheBaseline() {
        JouleEngine.load(model, options(source = "estimate")).use { metered ->
            val phases = Collections.synchronizedList(mutableListOf<String>())
            val listener = object : BenchListener {
                override fun onProgress(progress: BenchProgress): Boolean {
                    phases.add(progress.phase)
                    return true
                }
            }
            val r = metered.runEnergyBench(
                EnergyBenchOptions(baselineS = 1.0, durationS = 2.0, tokensPerPrompt = 16u), listener)
            assertTrue(r.baselineSubtracted)
            assertTrue(r.baselineS >= 0.9, "baseline over ${r.baselineS} s")
            assertEquals(EnergyMethod.ESTIMATED, r.method)
            assertTrue(r.turns >= 1uL && r.generatedTokens >= 1uL)
            assertTrue(r.totalJoules > 0.0 && r.totalJoules <= r.rawTotalJoules)
            assertEquals(r.rawTotalJoules - r.baselineWatts * (r.prefillS + r.decodeS), r.totalJoules, 1e-6 + r.rawTotalJoules * 1e-9)
            assertTrue(r.joulesPerToken!! > 0.0 && r.decodeTokensPerS > 0.0)
            assertTrue(r.json.contains("\"baseline\"") && r.json.contains("\"joules_per_token\""))
            assertEquals("baseline", phases.first())
            assertEquals("done", phases.last())
        }
    }

    /**
     * What the listener costs per generated token, measured in Rust around each call (JNA's
     * upcall, lifting the text, the Kotlin body). The first turns run while the JVM still
     * interprets JNA's callback path; an app streams for much longer, so three turns warm it
     * up and the next three are measured. The bound is checked on the calling thread's CPU
     * time: on a shared machine the wall clock also counts waiting for a core that another
     * process holds (both are printed).
     */
    @Test
    fun callbackOverheadIsUnderOnePercentOfDecode() {
        val story = "Write a long story about a lighthouse keeper and a storm."
        engine.newSession().use { session ->
            val noop = object : TokenListener {
                override fun onText(text: String) {}
            }
            var wallMs = 0.0
            var cpuMs = 0.0
            var decodeMs = 0.0
            var calls = 0uL
            var tokens = 0uL
            for (turn in 1..6) {
                session.reset()
                val r = session.send(story, short(128u), noop)
                println(String.format(
                    "turn %d: listener %.3f ms wall, %.3f ms CPU in %d calls; decode %.1f ms, %d tokens",
                    turn, r.listenerMs, r.listenerCpuMs, r.listenerCalls.toLong(), r.decodeMs, r.generatedTokens.toLong()))
                if (turn > 3) {
                    wallMs += r.listenerMs
                    cpuMs += r.listenerCpuMs
                    decodeMs += r.decodeMs
                    calls += r.listenerCalls
                    tokens += r.generatedTokens
                }
            }
            val share = cpuMs / decodeMs
            println(String.format(
                "callback overhead: %d calls for %d tokens over %.1f ms of decode; CPU %.3f ms = %.1f us per token = %.3f%% of decode; wall %.3f ms = %.1f us per token = %.3f%% of decode",
                calls.toLong(), tokens.toLong(), decodeMs, cpuMs, cpuMs * 1000.0 / tokens.toDouble(), 100 * share,
                wallMs, wallMs * 1000.0 / tokens.toDouble(), 100 * wallMs / decodeMs))
            assertTrue(calls >= 3uL && tokens >= 300uL, "$calls calls, $tokens tokens")
            assertTrue(cpuMs > 0.0 && cpuMs <= wallMs * 1.05 + 0.1, "CPU $cpuMs ms, wall $wallMs ms")
            assertTrue(share < 0.01, "callbacks took ${100 * share}% of decode")
        }
    }
}
