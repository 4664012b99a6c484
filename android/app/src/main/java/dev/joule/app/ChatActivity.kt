package dev.joule.app

import android.app.Activity
import android.content.Intent
import android.os.Bundle
import android.view.View
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.ScrollView
import android.widget.TextView
import dev.joule.SendOptions
import dev.joule.GenerationReport
import dev.joule.JouleException
import dev.joule.TokenListener

/** Chat screen: model picker, streamed answer, live tokens/s and J/token, cancel, reset. */
class ChatActivity : Activity() {
    private lateinit var modelLabel: TextView
    private lateinit var pathInput: EditText
    private lateinit var transcript: TextView
    private lateinit var scroll: ScrollView
    private lateinit var stats: TextView
    private lateinit var input: EditText
    private lateinit var send: Button
    private lateinit var cancel: Button
    private lateinit var reset: Button
    @Volatile private var busy = false

    override fun onCreate(savedInstanceState: Bundle?) {
        super.onCreate(savedInstanceState)
        val ui = Ui(this)
        modelLabel = ui.text(getString(R.string.no_model))
        pathInput = ui.edit(getString(R.string.model_path_hint))
        transcript = ui.text("").apply { setTextIsSelectable(true) }
        scroll = ScrollView(this).apply { addView(transcript) }
        stats = ui.text("")
        input = ui.edit(getString(R.string.message_hint))
        send = ui.button(getString(R.string.send)) { onSend() }
        cancel = ui.button(getString(R.string.cancel)) { JouleHolder.session?.cancel() }
        reset = ui.button(getString(R.string.reset)) { onReset() }
        val root = ui.column(
            modelLabel,
            ui.row(
                pathInput,
                ui.button(getString(R.string.load)) { load(pathInput.text.toString()) },
                ui.button(getString(R.string.pick)) { pickModel() },
            ),
            ui.weighted(scroll),
            stats,
            ui.row(input, send, cancel, reset),
            ui.button(getString(R.string.bench_title)) {
                startActivity(Intent(this, BenchActivity::class.java))
            },
        )
        setContentView(root)
        JouleHolder.modelPath?.let { modelLabel.text = describeModel() }
        setBusy(false)
    }

    private fun pickModel() {
        val intent = Intent(Intent.ACTION_OPEN_DOCUMENT).apply {
            addCategory(Intent.CATEGORY_OPENABLE)
            type = "*/*"
        }
        startActivityForResult(intent, PICK_MODEL)
    }

    @Deprecated("Platform API without AndroidX")
    override fun onActivityResult(requestCode: Int, resultCode: Int, data: Intent?) {
        super.onActivityResult(requestCode, resultCode, data)
        val uri = data?.data
        if (requestCode != PICK_MODEL || resultCode != RESULT_OK || uri == null) return
        setBusy(true)
        modelLabel.text = "copying $uri…"
        JouleHolder.worker.execute {
            val path = runCatching { ModelFiles.copyToAppStorage(this, uri).path }
            runOnUiThread {
                setBusy(false)
                path.onSuccess { load(it) }.onFailure { modelLabel.text = "copy failed: ${it.message}" }
            }
        }
    }

    private fun load(path: String) {
        if (path.isBlank()) return
        setBusy(true)
        modelLabel.text = "loading $path…"
        JouleHolder.worker.execute {
            val result = runCatching { JouleHolder.load(this, path) }
            runOnUiThread {
                setBusy(false)
                result.onSuccess {
                    transcript.text = ""
                    stats.text = ""
                    modelLabel.text = describeModel()
                }.onFailure { modelLabel.text = errorText(it) }
            }
        }
    }

    private fun onSend() {
        val session = JouleHolder.session ?: return
        val text = input.text.toString()
        if (text.isBlank() || busy) return
        input.setText("")
        transcript.append("\n> $text\n")
        setBusy(true)
        val started = System.nanoTime()
        var pieces = 0
        val listener = object : TokenListener {
            override fun onText(text: String) {
                pieces += 1
                val seconds = (System.nanoTime() - started) / 1e9
                runOnUiThread {
                    transcript.append(text)
                    stats.text = "streaming… %.1f pieces/s".format(pieces / seconds)
                    scroll.post { scroll.fullScroll(View.FOCUS_DOWN) }
                }
            }
        }
        JouleHolder.worker.execute {
            val result = runCatching { session.send(text, SendOptions(), listener) }
            runOnUiThread {
                setBusy(false)
                result.onSuccess { stats.text = reportLine(it) }.onFailure { stats.text = errorText(it) }
            }
        }
    }

    private fun onReset() {
        if (busy) return
        runCatching { JouleHolder.session?.reset() }
        transcript.text = ""
        stats.text = ""
    }

    private fun setBusy(value: Boolean) {
        busy = value
        send.isEnabled = !value
        reset.isEnabled = !value
        cancel.isEnabled = value
    }

    private fun describeModel(): String {
        val info = runCatching { JouleHolder.engine?.info() }.getOrNull() ?: return getString(R.string.no_model)
        val quant = info.quantTypes.maxByOrNull { it.value }?.key ?: "?"
        return "${info.name} (${info.architecture}, $quant), ${info.threads} threads, ${info.kernel}"
    }

    companion object {
        private const val PICK_MODEL = 1

        /** tokens/s, J/token and how the energy was obtained (never an unlabelled estimate). */
        fun reportLine(r: GenerationReport): String {
            val speed = "%.1f t/s decode, %d tokens".format(r.decodeTokensPerS, r.generatedTokens.toLong())
            val e = r.energy ?: return "$speed · energy: off"
            val perToken = e.joulesPerGeneratedToken?.let { "%.3f J/token".format(it) } ?: "J/token: n/a"
            return "$speed · $perToken · ${e.sourceKind} (${e.method.name.lowercase()}): ${e.source}"
        }

        fun errorText(t: Throwable): String = when (t) {
            is JouleException -> "${t::class.simpleName}: ${t.message}"
            else -> "error: ${t.message}"
        }
    }
}
