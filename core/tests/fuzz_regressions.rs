//! Inputs the fuzz targets (fuzz/fuzz_targets/, scripts/fuzz) found crashing, kept as
//! regression tests. RELIABILITY.md lists each with its fix.

use joule_core::chat::{ChatMessage, ChatTemplate, TemplateTokens};
use joule_core::energy::PowerTrace;

/// chat_template: a `{%}` tag made `neutralize_generation_tags` slice `tag[2..1]`
/// (panic: begin > end) in a template containing the word "generation".
#[test]
fn chat_template_with_an_open_close_tag_does_not_panic() {
    let found = "{% for (essage i% endfor % {%}if a&d_generation_prompt %}{{ '<|im_starta|>\
                 ssiessage i% endfor % {%}if a&d_generation_prompt %}{{ '<|im_startistant\\n' \
                 }}{f.";
    for source in [found, "{%}generation", "{%}{% generation %}x{% endgeneration %}"] {
        // A syntax error or a rendered prompt are both fine; a panic is not.
        if let Ok(template) = ChatTemplate::new(source, TemplateTokens::default()) {
            let _ = template.render(&[ChatMessage::user("Hi!")], true);
        }
    }
    // Well-formed generation tags still become plain blocks.
    let template = ChatTemplate::new(
        "{% generation %}{{ messages[0]['content'] }}{% endgeneration %}",
        TemplateTokens::default(),
    )
    .expect("compiles");
    assert_eq!(template.render(&[ChatMessage::user("Hi!")], false).unwrap(), "Hi!");
}

/// energy_trace: a NaN window end made the sample count
/// `partition_point(.. <= NaN) - partition_point(.. < start)` underflow (a panic with overflow checks, a huge count
/// without).
#[test]
fn energy_window_with_a_nan_bound_is_empty() {
    let trace = PowerTrace::parse("timE_s,power_mw,extra\n0,1,500,a\n0.25,1706,b\n")
        .expect("the trace parses");
    let nan = f64::from_le_bytes(*b"timcE\xff\xff\xff");
    assert!(nan.is_nan());
    for (start, end) in [(0.0, nan), (nan, 1.0), (nan, nan), (0.1, f64::NAN)] {
        let e = trace.energy_between(start, end);
        assert_eq!((e.joules, e.coverage, e.samples), (0.0, 0.0, 0), "window {start}..{end}");
    }
    // A real window still integrates: 0.25 s between 1 mW and 1.706 W.
    let e = trace.energy_between(0.0, 0.25);
    assert_eq!(e.samples, 2);
    assert!((e.joules - 0.25 * (0.001 + 1.706) / 2.0).abs() < 1e-12, "{}", e.joules);
}
