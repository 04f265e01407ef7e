// AddressSanitizer's defaults for the in-process fuzzers; ASAN_OPTIONS still overrides each.
//
// malloc_context_size=2: an allocation or free is recorded as the allocator call and its caller.
// ASan takes these stacks by walking frame pointers, and Debian's yaml-cpp and libcrypto are
// built without them: a third frame read through one of their functions is whatever the
// register held, different at every run. Each such stack was new to ASan's stack depot, which
// never frees, so a soak's RSS grew without bound (profile_loader_fuzzer: 474 MB after 15 s,
// 742 MB after 3 min, climbing about 85 MB a minute; the same inputs replayed 10 times grew the
// depot from 5,800 ids to 29,425 with three frames, not at all with two). The two frames kept
// are exact. To see a finding's full allocation and free stacks, replay its input with
// ASAN_OPTIONS=malloc_context_size=30:fast_unwind_on_malloc=0 (the slow unwinder reads the
// unwind tables).
extern "C" const char* __asan_default_options() { return "malloc_context_size=2"; }
