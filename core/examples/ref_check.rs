//! Prints how far a precision's teacher-forced log-probabilities are from a reference's
//! float (`f32`) continuation, next to llama.cpp's distance on the same steps:
//! `cargo run --release -p joule-core --example ref_check -- fast|exact [MODEL] [REFERENCE.jsonl]`
//! (defaults: the SmolLM2 model and its chat reference).
use joule_core::{engine::score::score, model::Model, threads::ThreadPool};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let prec: joule_core::Precision =
        args.get(1).map_or("exact", String::as_str).parse().expect("fast or exact");
    let model = args.get(2).map_or("models/SmolLM2-135M-Instruct.Q4_1.gguf", String::as_str);
    let reference =
        args.get(3).map_or("../shared/reference/smollm2-135m-q4_1.chat.jsonl", String::as_str);
    let m = Model::open(model, prec).unwrap();
    let pool = ThreadPool::new(2).unwrap();
    let text = std::fs::read_to_string(reference).unwrap();
    let (mut ours_sum, mut llama_sum, mut n) = (0f64, 0f64, 0usize);
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let p: Vec<u32> = serde_json::from_value(v["prompt_tokens"].clone()).unwrap();
        let g: Vec<u32> = serde_json::from_value(v["f32"]["greedy"].clone()).unwrap();
        let lg: Vec<u32> = serde_json::from_value(v["llamacpp"]["greedy"].clone()).unwrap();
        let common = g.iter().zip(&lg).take_while(|(a, b)| a == b).count();
        let t0 = std::time::Instant::now();
        let steps = score(&m, &pool, 512, &p, &g, 10, true).unwrap();
        let mut maxd = 0f32;
        let mut greedy_ok = true;
        for (i, st) in steps.iter().enumerate() {
            let top = v["f32"]["top10"][i].as_array().unwrap();
            for (k, e) in top.iter().enumerate() {
                let id = e[0].as_u64().unwrap() as usize;
                let lp = e[1].as_f64().unwrap() as f32;
                let d = (st.log_probs[id] - lp).abs();
                maxd = maxd.max(d);
                if k < 5 && i <= common.min(steps.len() - 1) {
                    let ltop = v["llamacpp"]["top10"][i].as_array().unwrap();
                    if let Some(le) = ltop.iter().find(|x| x[0].as_u64().unwrap() as usize == id) {
                        llama_sum += (le[1].as_f64().unwrap() - lp as f64).abs();
                        ours_sum += d as f64;
                        n += 1;
                    }
                }
            }
            if st.top[0].0 != g[i] {
                greedy_ok = false;
            }
        }
        println!(
            "steps {} common {common} maxd {maxd:.2e} greedy_ok {greedy_ok} {:?}",
            steps.len(),
            t0.elapsed()
        );
    }
    println!(
        "top5 on common steps: ours mean {:.4}, llama.cpp mean {:.4} over {n}",
        ours_sum / n as f64,
        llama_sum / n as f64
    );
}
