"""libFuzzer targets that are also corpus regression tests.

In the ordinary build a fuzzer is a cc_test that runs its fuzz function once on every file of
its seed corpus (base/fuzz_corpus_main.cc): each crash found and fixed is added to the corpus and
stays a test, under the sanitizer configuration too. Built with --config=fuzz (clang, libFuzzer,
AddressSanitizer and UndefinedBehaviorSanitizer; scripts/fuzz.sh) the same target is a libFuzzer
binary that explores from that corpus.
"""

def muppet_fuzzer(name, srcs, deps, corpus = None):
    """A fuzz target `name` whose seed corpus is the directory `corpus` (default name_corpus).

    `srcs` define `extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t)`.
    """
    corpus = corpus or name + "_corpus"
    native.cc_test(
        name = name,
        size = "small",
        srcs = srcs,
        deps = deps + select({
            "//base:fuzzing": [],
            "//conditions:default": ["//base:fuzz_corpus_main"],
        }),
        linkopts = select({
            "//base:fuzzing": ["-fsanitize=fuzzer"],
            "//conditions:default": [],
        }),
        data = native.glob([corpus + "/**"]),
        args = [native.package_name() + "/" + corpus],
        tags = ["fuzzer"],
    )
