package dev.joule.app

import android.app.Activity
import android.content.Intent
import android.os.Bundle
import android.text.InputType
import android.widget.Button
import android.widget.ScrollView
import android.widget.TextView
import dev.joule.BenchListener
import dev.joule.BenchProgress
import dev.joule.EnergyBenchOptions

/**
 * Battery bench: runs the core's `run_energy_bench` (idle baseline, fixed prompts, baseline
 * subtracted) on the loaded model and shares its JSON. All measuring happens in Rust.
 */
class BenchActivity : Activity() {
    private lateinit var progress: TextView
    private lateinit var result: TextView
    private lateinit var run: Button
    private lateinit var share: Button
    private var json: String = ""

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val ui = Ui(this)
        val seconds = ui.edit(getString(R.string.bench_seconds_hint)).apply {
            inputType = InputType.TYPE_CLASS_NUMBER
            setText("120")
        }
        progress = ui.text(getString(R.string.bench_note))
        result = ui.text("").apply { setTextIsSelectable(true) }
        run = ui.button(getString(R.string.run_bench)) {
            start(seconds.text.toString().toDoubleOrNull() ?: 120.0)
        }
        share = ui.button(getString(R.string.share)) { shareJson() }.apply { isEnabled = false }
        setContentView(
            ui.column(
                ui.row(seconds, run, share),
                progress,
                ui.weighted(ScrollView(this).apply { addView(result) }),
            ),
        )
    }

    private fun start(seconds: Double) {
        val engine = JouleHolder.engine
        if (engine == null) {
            progress.text = getString(R.string.no_model)
            return
        }
        run.isEnabled = false
        share.isEnabled = false
        val listener = object : BenchListener {
            override fun onProgress(progress: BenchProgress): Boolean {
                val line = "%.0f %% · %s · %d tokens".format(
                    progress.fraction * 100, progress.phase, progress.generatedTokens.toLong(),
                )
                runOnUiThread { this@BenchActivity.progress.text = line }
                return !isFinishing
            }
        }
        val options = EnergyBenchOptions(durationS = seconds)
        JouleHolder.worker.execute {
            val outcome = runCatching { engine.runEnergyBench(options, listener) }
            runOnUiThread {
                run.isEnabled = true
                outcome.onSuccess {
                    json = it.json
                    result.text = json
                    share.isEnabled = true
                }.onFailure { progress.text = ChatActivity.errorText(it) }
            }
        }
    }

    private fun shareJson() {
        val send = Intent(Intent.ACTION_SEND).apply {
            type = "application/json"
            putExtra(Intent.EXTRA_SUBJECT, "Joule battery bench")
            putExtra(Intent.EXTRA_TEXT, json)
        }
        startActivity(Intent.createChooser(send, getString(R.string.share)))
    }
}
