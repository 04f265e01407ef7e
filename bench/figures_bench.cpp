// What the load run's measurements cost (harness/load/figures.hpp): filing one exchange on an
// engine thread, merging a thread's or a shard's figures, and writing and reading a load record,
// for a 10-second run and for one whose timeline is full (1000 intervals).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "harness/load/figures.hpp"
#include "harness/load/load_report.hpp"

namespace {

namespace chr = std::chrono;
using mdmc::load::ExchangeKey;
using mdmc::load::Figures;
using mdmc::load::LoadReport;

// 200 000 exchanges of four message types, log-normal latencies around 5 ms, spread evenly
// over `seconds`.
struct Exchange {
  ExchangeKey key;
  chr::nanoseconds latency;
  chr::nanoseconds at;
};

std::vector<Exchange> exchanges(double seconds) {
  std::mt19937_64 random(16);
  std::lognormal_distribution<double> latency_ms(std::log(5.0), 1.0);
  const char* messages[] = {"Idle", "Acknowledged", "NotNow", "TokenUpdate"};
  constexpr int kCount = 200'000;
  std::vector<Exchange> out;
  out.reserve(kCount);
  for (int i = 0; i < kCount; ++i) {
    out.push_back({{messages[random() % 4], 200},
                   chr::nanoseconds(static_cast<std::int64_t>(latency_ms(random) * 1e6)),
                   chr::nanoseconds(static_cast<std::int64_t>(seconds * 1e9 * i / kCount))});
  }
  return out;
}

Figures recorded(double seconds) {
  Figures f;
  for (const auto& e : exchanges(seconds)) f.record(e.key, e.latency, e.at);
  return f;
}

void record(benchmark::State& state) {
  const auto events = exchanges(static_cast<double>(state.range(0)));
  std::size_t i = 0;
  Figures f;
  for (auto _ : state) {
    const Exchange& e = events[i++ % events.size()];
    f.record(e.key, e.latency, e.at);
  }
  benchmark::DoNotOptimize(f);
  state.SetItemsProcessed(state.iterations());
}

void merge(benchmark::State& state) {
  const Figures other = recorded(static_cast<double>(state.range(0)));
  Figures into = other;
  for (auto _ : state) into.merge(other);
  benchmark::DoNotOptimize(into);
}

void write_record(benchmark::State& state) {
  LoadReport report;
  report.figures = recorded(static_cast<double>(state.range(0)));
  std::size_t bytes = 0;
  for (auto _ : state) bytes = mdmc::load::to_json(report).size();
  state.counters["bytes"] = static_cast<double>(bytes);
}

void read_record(benchmark::State& state) {
  LoadReport report;
  report.figures = recorded(static_cast<double>(state.range(0)));
  const std::string text = mdmc::load::to_json(report);
  for (auto _ : state) {
    auto back = mdmc::load::load_report_from_json(text);
    if (!back.ok()) {
      state.SkipWithError(back.message().c_str());
      break;
    }
    benchmark::DoNotOptimize(back);
  }
}

// The argument: the run's length in seconds (1-second intervals).
BENCHMARK(record)->Arg(10)->Arg(1000);
BENCHMARK(merge)->Arg(10)->Arg(1000)->Unit(benchmark::kMicrosecond);
BENCHMARK(write_record)->Arg(10)->Arg(1000)->Unit(benchmark::kMillisecond);
BENCHMARK(read_record)->Arg(10)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
