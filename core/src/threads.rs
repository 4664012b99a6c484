//! A small thread pool started once per engine. A job runs on the caller's thread
//! (thread 0) and the workers at once, the way a forward pass splits each matmul and the
//! attention heads. Workers spin briefly between jobs, then sleep, so the back-to-back
//! jobs of one token cost no wake-up while an idle engine costs no CPU.
//!
//! Jobs that hand out work items dynamically do not wait for a worker that has not
//! started yet (descheduled by the OS, e.g. on a phone busy with other apps): the caller
//! takes the remaining items itself and closes the job, so one late thread costs one
//! item's worth of time, not a scheduler quantum per job.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::{Duration, Instant};

use sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use sync::thread::JoinHandle;
use sync::{Arc, Condvar, Mutex, spin_loop, thread, yield_now};

/// The pool's synchronisation primitives: std's, or loom's when the pool is checked by
/// the loom model checker (`--cfg loom`, only in the loom/ crate: `scripts/test-loom`).
mod sync {
    #[cfg(loom)]
    pub use loom::{
        hint::spin_loop,
        sync::{Arc, Condvar, Mutex, atomic},
        thread::{self, yield_now},
    };
    #[cfg(not(loom))]
    pub use std::{
        hint::spin_loop,
        sync::{Arc, Condvar, Mutex, atomic},
        thread::{self, yield_now},
    };
}

/// The job signature: `f(thread_index, n_threads)`.
type Job<'a> = dyn Fn(usize, usize) + Sync + 'a;

/// How long a worker spins for the next job before sleeping.
#[cfg(not(loom))]
const SPIN_BEFORE_SLEEP: Duration = Duration::from_micros(200);
/// Under loom, time does not pass: sleep at once (the spinning path is the same loop).
#[cfg(loom)]
const SPIN_BEFORE_SLEEP: Duration = Duration::ZERO;
/// Spins of a waiting caller between yields of its time slice.
const SPINS_BEFORE_YIELD: u32 = 2000;

struct Shared {
    n_threads: usize,
    /// Advanced by two per job (odd while a job is being published); workers run a job
    /// when they see it change.
    epoch: AtomicU64,
    /// The current job: a pointer to a `&Job` on the dispatching thread's stack.
    job: AtomicPtr<&'static Job<'static>>,
    /// Whether every worker must run the current job (else late workers skip it).
    required: AtomicBool,
    /// A dynamic job no longer admits workers.
    closed: AtomicBool,
    /// Workers inside the current job.
    active: AtomicUsize,
    /// Workers that finished the current job.
    done: AtomicUsize,
    panicked: AtomicBool,
    shutdown: AtomicBool,
    sleepers: AtomicUsize,
    sleep_lock: Mutex<()>,
    wake: Condvar,
}

/// A fixed set of worker threads. Jobs are serialised: one at a time per pool.
pub struct ThreadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    dispatch: Mutex<()>,
}

impl ThreadPool {
    /// Starts `n_threads - 1` workers (the caller of `run` is the last thread).
    pub fn new(n_threads: usize) -> std::io::Result<Self> {
        let n_threads = n_threads.max(1);
        let shared = Arc::new(Shared {
            n_threads,
            epoch: AtomicU64::new(0),
            job: AtomicPtr::new(std::ptr::null_mut()),
            required: AtomicBool::new(true),
            closed: AtomicBool::new(false),
            active: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            panicked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            sleepers: AtomicUsize::new(0),
            sleep_lock: Mutex::new(()),
            wake: Condvar::new(),
        });
        let mut pool = Self { shared, workers: Vec::new(), dispatch: Mutex::new(()) };
        for index in 1..n_threads {
            let shared = Arc::clone(&pool.shared);
            // On failure, dropping `pool` stops the workers already started.
            let handle = thread::Builder::new()
                .name(format!("joule-worker-{index}"))
                .spawn(move || worker_loop(&shared, index))?;
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    pub fn n_threads(&self) -> usize {
        self.shared.n_threads
    }

    /// Runs `f(thread_index, n_threads)` on every thread and returns when all are done.
    /// A panic in any thread is re-raised here after every thread has finished.
    pub fn run(&self, f: &Job<'_>) {
        self.dispatch(f, true);
    }

    /// Runs `f` on the caller and on the workers that arrive while the caller's own
    /// call is running; `f` must hand out its work dynamically so that the caller alone
    /// finishes it.
    fn run_dynamic(&self, f: &Job<'_>) {
        self.dispatch(f, false);
    }

    fn dispatch(&self, f: &Job<'_>, required: bool) {
        let n = self.shared.n_threads;
        if n == 1 {
            f(0, 1);
            return;
        }
        let _guard = self.dispatch.lock().unwrap_or_else(|e| e.into_inner());
        let shared = &*self.shared;
        // SAFETY: the job reference is published to the workers only for the duration of
        // this call: we do not return (not even by unwinding: the caller's own share runs
        // under catch_unwind) until every worker that entered the job has left it, and a
        // dynamic job is closed to latecomers before that wait, so no worker touches the
        // pointer afterwards. Erasing the lifetime is therefore sound.
        let job: &'static Job<'static> =
            unsafe { std::mem::transmute::<&Job<'_>, &'static Job<'static>>(f) };
        let slot: &&'static Job<'static> = &job;
        // Publish like a seqlock: an odd epoch means "being written", so a worker never
        // pairs one job's epoch with another job's fields.
        let epoch = shared.epoch.load(Ordering::Relaxed);
        shared.epoch.store(epoch + 1, Ordering::SeqCst);
        shared.done.store(0, Ordering::SeqCst);
        shared.required.store(required, Ordering::SeqCst);
        shared.closed.store(false, Ordering::SeqCst);
        shared.job.store(slot as *const _ as *mut _, Ordering::SeqCst);
        shared.epoch.store(epoch + 2, Ordering::SeqCst);
        // A read-modify-write, not a load: with the worker's own RMW on `sleepers` (made
        // before it checks the epoch and sleeps), either that worker sees the new epoch
        // or this RMW sees the worker, so no wake-up is lost. A plain SeqCst load gives
        // the same guarantee only through the single total order of SeqCst operations,
        // which acquire/release reasoning (and loom, which models SeqCst as AcqRel)
        // cannot rely on.
        if shared.sleepers.fetch_add(0, Ordering::SeqCst) > 0 {
            let _l = shared.sleep_lock.lock().unwrap_or_else(|e| e.into_inner());
            shared.wake.notify_all();
        }
        let mine = catch_unwind(AssertUnwindSafe(|| f(0, n)));
        if required {
            wait_until(|| shared.done.load(Ordering::Acquire) >= n - 1);
        } else {
            shared.closed.store(true, Ordering::SeqCst);
            // As for `sleepers` above: this RMW on `active` and a worker's increment of it
            // (made before it reads `closed`) are ordered one way or the other, so either
            // the worker sees the job closed or the wait below counts it. With a plain
            // load, a worker could read `closed == false` after the caller read
            // `active == 0` (allowed under acquire/release; loom finds it) and run a job
            // whose closure is gone.
            shared.active.fetch_add(0, Ordering::SeqCst);
            wait_until(|| shared.active.load(Ordering::SeqCst) == 0);
        }
        shared.job.store(std::ptr::null_mut(), Ordering::Relaxed);
        if let Err(payload) = mine {
            std::panic::resume_unwind(payload);
        }
        if shared.panicked.swap(false, Ordering::Relaxed) {
            panic!("a worker thread panicked while running a job");
        }
    }

    /// Runs `f` on every item of `items`, the threads taking items in turn until none
    /// are left (dynamic balancing; the iterator is shared behind a lock).
    pub fn for_each_item<I>(&self, items: I, f: &(dyn Fn(I::Item) + Sync))
    where
        I: Iterator + Send,
    {
        let items = Mutex::new(items);
        self.run_dynamic(&|_, _| {
            loop {
                let next = items.lock().unwrap_or_else(|e| e.into_inner()).next();
                match next {
                    Some(item) => f(item),
                    None => break,
                }
            }
        });
    }

    /// Cuts `out` into chunks of `chunk_len` and runs `f(chunk_index, chunk)` for each,
    /// the threads taking chunks in turn until none are left (dynamic balancing, no
    /// allocation).
    pub fn for_each_chunk_mut<T: Send>(
        &self,
        out: &mut [T],
        chunk_len: usize,
        f: &(dyn Fn(usize, &mut [T]) + Sync),
    ) {
        self.for_each_item(out.chunks_mut(chunk_len.max(1)).enumerate(), &|(i, chunk)| f(i, chunk));
    }

    /// Splits `0..n_items` into one contiguous range per thread (ranges may be empty).
    pub fn split(n_items: usize, thread: usize, n_threads: usize) -> std::ops::Range<usize> {
        let per = n_items / n_threads;
        let extra = n_items % n_threads;
        let start = thread * per + thread.min(extra);
        start..start + per + usize::from(thread < extra)
    }
}

/// The number of performance cores: on big.LITTLE phones, the cores whose maximum
/// frequency is within 80 % of the fastest one (prime and performance clusters, not
/// efficiency cores); elsewhere every core the process may use.
pub fn performance_cores() -> usize {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let max_freqs: Vec<u64> = (0..all)
        .filter_map(|cpu| {
            let path = format!("/sys/devices/system/cpu/cpu{cpu}/cpufreq/cpuinfo_max_freq");
            std::fs::read_to_string(path).ok()?.trim().parse().ok()
        })
        .collect();
    match max_freqs.iter().max() {
        Some(&top) if max_freqs.len() == all => {
            max_freqs.iter().filter(|&&f| f * 5 >= top * 4).count().max(1)
        }
        _ => all,
    }
}

/// Spins on `ready`, yielding the time slice now and then so a descheduled worker that
/// shares this core can finish.
fn wait_until(ready: impl Fn() -> bool) {
    let mut spins = 0u32;
    while !ready() {
        spins += 1;
        if spins.is_multiple_of(SPINS_BEFORE_YIELD) {
            yield_now();
        } else {
            spin_loop();
        }
    }
}

fn worker_loop(shared: &Shared, index: usize) {
    let mut seen = 0u64;
    loop {
        let spin_start = Instant::now();
        loop {
            let e = shared.epoch.load(Ordering::Acquire);
            if (e != seen && e.is_multiple_of(2)) || shared.shutdown.load(Ordering::Relaxed) {
                break;
            }
            // An odd epoch is a publication in progress, done within nanoseconds unless
            // the caller was descheduled: wait for it with the spin hint (a yield under
            // loom) rather than going round the sleep lock, which never sleeps on an odd
            // epoch and would only busy-loop on the lock without yielding.
            if !e.is_multiple_of(2) || spin_start.elapsed() < SPIN_BEFORE_SLEEP {
                spin_loop();
                continue;
            }
            let guard = shared.sleep_lock.lock().unwrap_or_else(|e| e.into_inner());
            shared.sleepers.fetch_add(1, Ordering::SeqCst);
            let e = shared.epoch.load(Ordering::SeqCst);
            if e == seen && !shared.shutdown.load(Ordering::SeqCst) {
                drop(shared.wake.wait(guard).unwrap_or_else(|e| e.into_inner()));
            }
            shared.sleepers.fetch_sub(1, Ordering::SeqCst);
        }
        if shared.shutdown.load(Ordering::Relaxed) {
            return;
        }
        // Enter the current job (whichever it is by now), read a consistent snapshot of
        // it, then check it still admits us.
        shared.active.fetch_add(1, Ordering::SeqCst);
        let (epoch, required, closed, ptr) = loop {
            let e1 = shared.epoch.load(Ordering::SeqCst);
            if e1 % 2 == 1 {
                spin_loop();
                continue;
            }
            let required = shared.required.load(Ordering::SeqCst);
            let closed = shared.closed.load(Ordering::SeqCst);
            let ptr = shared.job.load(Ordering::SeqCst);
            if shared.epoch.load(Ordering::SeqCst) == e1 {
                break (e1, required, closed, ptr);
            }
        };
        if epoch == seen {
            // A job we already ran (we woke for a publication still being written).
            shared.active.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        seen = epoch;
        let admitted = required || !closed;
        if admitted && !ptr.is_null() {
            // SAFETY: the dispatching thread keeps the job alive until every worker that
            // entered it (counted in `active`, or in `done` for a required job) has left.
            let job: &Job<'static> = unsafe { *ptr };
            if catch_unwind(AssertUnwindSafe(|| job(index, shared.n_threads))).is_err() {
                shared.panicked.store(true, Ordering::Relaxed);
            }
            shared.done.fetch_add(1, Ordering::Release);
        }
        shared.active.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        {
            let _l = self.shared.sleep_lock.lock().unwrap_or_else(|e| e.into_inner());
            self.shared.wake.notify_all();
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_thread_runs_each_job_once() {
        let pool = ThreadPool::new(3).unwrap();
        for _ in 0..1000 {
            let hits: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
            pool.run(&|t, n| {
                assert_eq!(n, 3);
                hits[t].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn dynamic_and_required_jobs_interleave_without_losing_work() {
        let pool = ThreadPool::new(3).unwrap();
        for round in 0..5000 {
            let total = AtomicUsize::new(0);
            pool.for_each_item(0..(round % 7), &|i| {
                total.fetch_add(i + 1, Ordering::Relaxed);
            });
            let n = round % 7;
            assert_eq!(total.load(Ordering::Relaxed), n * (n + 1) / 2, "round {round}");
            let hits: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
            pool.run(&|t, _| {
                hits[t].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1), "round {round}");
            let mut out = vec![0u32; 50];
            pool.for_each_chunk_mut(&mut out, 7, &|ci, c| {
                c.iter_mut().for_each(|x| *x = ci as u32 + 1)
            });
            assert!(out.iter().enumerate().all(|(i, &x)| x == (i / 7) as u32 + 1));
        }
    }

    #[test]
    fn split_covers_every_item_once() {
        for n in 0..50 {
            for threads in 1..6 {
                let mut covered = vec![0; n];
                for t in 0..threads {
                    for i in ThreadPool::split(n, t, threads) {
                        covered[i] += 1;
                    }
                }
                assert!(covered.iter().all(|&c| c == 1), "n={n} threads={threads}");
            }
        }
    }

    #[test]
    fn a_worker_panic_reaches_the_caller_and_the_pool_survives() {
        let pool = ThreadPool::new(2).unwrap();
        let r = catch_unwind(AssertUnwindSafe(|| pool.run(&|t, _| assert_ne!(t, 1, "boom"))));
        assert!(r.is_err());
        let count = AtomicUsize::new(0);
        pool.run(&|_, _| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn workers_wake_after_sleeping() {
        let pool = ThreadPool::new(2).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        let count = AtomicUsize::new(0);
        pool.run(&|_, _| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 2);
    }
}
