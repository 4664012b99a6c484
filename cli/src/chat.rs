//! `joule chat`: an interactive conversation in the terminal.

use std::io::{BufRead, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use joule_core::engine::TurnReport;

use crate::ChatArgs;

pub fn chat(a: ChatArgs) -> Result<(), String> {
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
        None => engine.session().map_err(|e| e.to_string())?,
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
    let opts = a.sampling.generate();
    let mut last: Option<TurnReport> = None;
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    loop {
        eprint!("> ");
        let _ = std::io::stderr().flush();
        let Some(line) = lines.next() else { break };
        let line = line.map_err(|e| e.to_string())?;
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
                        eprintln!("{}", serde_json::to_string_pretty(r).map_err(|e| e.to_string())?)
                    }
                    None => eprintln!("(no turn yet)"),
                }
                continue;
            }
            _ => {}
        }
        let spinner = ProgressBar::new_spinner();
        spinner.set_style(
            ProgressStyle::with_template("{spinner} {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        spinner.set_message("reading the prompt...");
        spinner.enable_steady_tick(Duration::from_millis(80));
        let mut stdout = std::io::stdout();
        let mut started = false;
        let result = session.send(&line, &opts, &mut |piece| {
            if !started {
                spinner.finish_and_clear();
                started = true;
            }
            let _ = stdout.write_all(piece.as_bytes());
            let _ = stdout.flush();
        });
        spinner.finish_and_clear();
        match result {
            Ok(report) => {
                println!();
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
