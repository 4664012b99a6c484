package dev.joule.app

import android.content.Context
import android.net.Uri
import android.provider.OpenableColumns
import java.io.File

/** A picked document is copied once into app storage: the engine memory-maps a plain path. */
object ModelFiles {
    fun copyToAppStorage(context: Context, uri: Uri): File {
        val dir = File(context.filesDir, "models").apply { mkdirs() }
        val target = File(dir, displayName(context, uri) ?: "model.gguf")
        if (target.exists()) return target
        val partial = File(dir, target.name + ".partial")
        context.contentResolver.openInputStream(uri).use { input ->
            requireNotNull(input) { "cannot open $uri" }
            partial.outputStream().use { input.copyTo(it, 1 shl 20) }
        }
        check(partial.renameTo(target)) { "cannot rename ${partial.path}" }
        return target
    }

    private fun displayName(context: Context, uri: Uri): String? =
        context.contentResolver.query(uri, arrayOf(OpenableColumns.DISPLAY_NAME), null, null, null)?.use { c ->
            if (c.moveToFirst()) c.getString(0)?.substringAfterLast('/') else null
        }
}
