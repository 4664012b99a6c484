package dev.joule.app

import android.content.Context
import android.view.View
import android.view.ViewGroup.LayoutParams.MATCH_PARENT
import android.view.ViewGroup.LayoutParams.WRAP_CONTENT
import android.widget.Button
import android.widget.EditText
import android.widget.LinearLayout
import android.widget.TextView

/** Tiny builders for plain platform views (no AndroidX, no layout inflation). */
class Ui(private val context: Context) {
    private val pad = (8 * context.resources.displayMetrics.density).toInt()

    fun text(value: String) = TextView(context).apply {
        text = value
        setPadding(pad, pad / 2, pad, pad / 2)
    }

    fun edit(hint: String) = EditText(context).apply {
        this.hint = hint
        layoutParams = LinearLayout.LayoutParams(0, WRAP_CONTENT, 1f)
    }

    fun button(label: String, onClick: () -> Unit) = Button(context).apply {
        text = label
        setOnClickListener { onClick() }
    }

    fun row(vararg views: View) = LinearLayout(context).apply {
        orientation = LinearLayout.HORIZONTAL
        views.forEach { addView(it) }
    }

    fun column(vararg views: View) = LinearLayout(context).apply {
        orientation = LinearLayout.VERTICAL
        setPadding(pad, pad, pad, pad)
        views.forEach { addView(it, it.layoutParams ?: LinearLayout.LayoutParams(MATCH_PARENT, WRAP_CONTENT)) }
    }

    fun weighted(view: View): View = view.apply {
        layoutParams = LinearLayout.LayoutParams(MATCH_PARENT, 0, 1f)
    }
}
