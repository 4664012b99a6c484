use joule_core::{model::Model, threads::ThreadPool, engine::score::score};
fn main() {
    let m = Model::open("models/SmolLM2-135M-Instruct.Q4_1.gguf").unwrap();
    let pool = ThreadPool::new(2).unwrap();
    let text = std::fs::read_to_string("../shared/reference/smollm2-135m-q4_1.chat.jsonl").unwrap();
    for line in text.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let p: Vec<u32> = serde_json::from_value(v["prompt_tokens"].clone()).unwrap();
        let g: Vec<u32> = serde_json::from_value(v["f32"]["greedy"].clone()).unwrap();
        let t0 = std::time::Instant::now();
        let steps = score(&m, &pool, 512, &p, &g, 10, true).unwrap();
        let mut maxd = 0f32; let mut greedy_ok = true;
        for (i, st) in steps.iter().enumerate() {
            let top = v["f32"]["top10"][i].as_array().unwrap();
            for e in top { let id = e[0].as_u64().unwrap() as usize; let lp = e[1].as_f64().unwrap() as f32; maxd = maxd.max((st.log_probs[id]-lp).abs()); }
            if st.top[0].0 != g[i] { greedy_ok = false; }
        }
        println!("steps {} maxd {maxd:.2e} greedy_ok {greedy_ok} {:?}", steps.len(), t0.elapsed());
    }
}
