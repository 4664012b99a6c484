//! `joule chat`: an interactive conversation in the terminal.

use std::io::{BufRead, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use joule_core::engine::TurnReport;
use joule_core::fsutil::escape;

use crate::ChatArgs;
use crate::output::{Stream, outln};

pub fn chat(a: ChatArgs) -> crate::CliResult {
    let engine = crate::load(&a.model, Some(&a.sampling))?;
    let info = engine.info();
    let resume = a.session.as_ref().filter(|p| p.exists());
    let mut session = match resume {
        Some(path) => {
            let s = engine
                .restore_session(path)
                .map_err(|e| format!("cannot resume {}: {e}", path.display()))?;
            eprintln!(
                "(resumed {}: {} messages, {} tokens cached)",
                path.display(),
                s.messages().len(),
                s.context_used()
            );
            s
        }
        None => engine.session()?,
    };
    if let Some(system) = &a.system
        && resume.is_none()
    {
        session.add_system(system);
    }
    // Ctrl-C stops the answer being generated, not the program.
    let cancel = session.cancel_flag();
    ctrlc::set_handler(move || cancel.cancel())
        .map_err(|e| format!("cannot install the Ctrl-C handler: {e}"))?;
    eprintln!(
        "{} ({}, {} threads, {} kernels, context {}). /reset clears the conversation, /stats shows the last turn, /quit leaves; Ctrl-C stops an answer.",
        info.name, info.architecture, info.threads, info.kernel, info.context
    );
    let opts = a.sampling.generate(&crate::model_path(a.model.model.as_deref())?)?;
    let mut last: Option<TurnReport> = None;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        eprint!("> ");
        let _ = std::io::stderr().flush();
        let Some(line) = lines.next() else { break };
        let line = match line {
            Ok(line) => line,
            // One undecodable line (a paste in another encoding) must not end the session.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                eprintln!("error: that line is not valid UTF-8 text; it was skipped");
                continue;
            }
            Err(e) => return Err(format!("cannot read standard input: {e}").into()),
        };
        match line.trim() {
            "" => continue,
            "/quit" | "/exit" => break,
            "/reset" => {
                session.reset();
                if let Some(system) = &a.system {
                    session.add_system(system);
                }
                eprintln!("(conversation cleared)");
                continue;
            }
            "/stats" => {
                match &last {
                    Some(r) => {
                        eprintln!("{}", serde_json::to_string_pretty(r)?)
                    }
                    None => eprintln!("(no turn yet)"),
                }
                continue;
            }
            command if is_command(&line) => {
                eprintln!(
                    "unknown command {}: /reset, /stats and /quit are known; start a message \
                     with // (or a space) to send a slash to the model",
                    escape(command.split_whitespace().next().unwrap_or(command))
                );
                continue;
            }
            _ => {}
        }
        // `//text` sends `/text`.
        let line = line.strip_prefix('/').filter(|l| l.starts_with('/')).unwrap_or(&line);
        let spinner = ProgressBar::new_spinner();
        spinner.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        spinner.set_message("reading the prompt...");
        spinner.enable_steady_tick(Duration::from_millis(80));
        let mut started = false;
        let mut stream = Stream::default();
        let cancel = session.cancel_flag();
        let result = session.send(line, &opts, &mut |piece| {
            if !started {
                spinner.finish_and_clear();
                started = true;
            }
            if !stream.piece(piece) {
                cancel.cancel();
            }
        });
        spinner.finish_and_clear();
        stream.finish()?;
        match result {
            Ok(report) => {
                outln!()?;
                eprintln!("{}", report.summary_line());
                last = Some(report);
                if let Some(path) = &a.session
                    && let Err(e) = session.save(path)
                {
                    eprintln!("error: cannot save the session: {e}");
                }
            }
            Err(e) => eprintln!("error: {e}"),
        }
    }
    Ok(())
}

/// A line that looks like a command (`/word`) rather than a message; `//` escapes a slash.
fn is_command(line: &str) -> bool {
    line.starts_with('/') && !line.starts_with("//")
}
