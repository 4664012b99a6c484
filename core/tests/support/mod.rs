//! Helpers shared by every module of the integration binary.

pub mod kernel_cases;

use std::ffi::OsStr;
use std::process::Command;

/// Set in a child started by [`run_child`]: the name of the one test it runs.
const CHILD_ENV: &str = "JOULE_TEST_CHILD";

/// The integration binary runs many tests in one process. A test that must see its own
/// environment variables from the start, or this process's CPU time alone, calls this:
/// `body` then runs in a child process (see [`run_child`]) with `vars` set. `test` is the
/// test's path as libtest prints it, e.g. `"energy_rapl::sysfs_root_comes_from_the_environment"`.
pub fn in_own_process(test: &str, vars: &[(&str, &OsStr)], body: impl FnOnce()) {
    if std::env::var(CHILD_ENV).is_ok_and(|t| t == test) {
        body();
    } else {
        run_child(test, vars, &[]);
    }
}

/// Runs the test `test` alone in a child process (this binary, filtered to it exactly, one
/// thread) with `vars` set and `removed` unset, and asserts that it passed.
pub fn run_child(test: &str, vars: &[(&str, &OsStr)], removed: &[&str]) {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", test, "--test-threads=1"]).env(CHILD_ENV, test);
    for name in removed {
        cmd.env_remove(name);
    }
    cmd.envs(vars.iter().copied());
    let out = cmd.output().expect("the test binary starts again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 passed"),
        "{test} in its own process with {vars:?}:\n{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
