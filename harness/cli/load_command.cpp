#include "harness/cli/load_command.hpp"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "harness/base/load_error.hpp"
#include "harness/net/http.hpp"
#include "harness/report/load_page.hpp"
#include "harness/target/enrollment.hpp"
#include "harness/target/profile.hpp"
#include "harness/target/session.hpp"

namespace mdmc::cli {
namespace {

int usage(const std::string& message) {
  fmt::print(stderr, "mdmconform: {}\n", message);
  return 2;
}

std::chrono::milliseconds from_seconds(double s) {
  return std::chrono::milliseconds(static_cast<long long>(s * 1000.0 + 0.5));
}

// What the console says at the end: the overall figures and every finding's first line.
std::string console_summary(const load::LoadReport& report) {
  const auto all = report.figures.overall();
  std::string out = fmt::format(
      "{} exchanges in {:.1f} s ({:.0f}/s) over {} channels; latency p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms\n",
      report.figures.exchanges(), report.elapsed_s,
      report.elapsed_s > 0 ? static_cast<double>(report.figures.exchanges()) / report.elapsed_s : 0.0, report.channels,
      all.p50_ms, all.p99_ms, all.max_ms);
  out += fmt::format(
      "commands: {} queued, {} delivered, {} acknowledged, {} NotNow, {} Error, {} outstanding, {} refused\n",
      report.commands.queued, report.commands.delivered, report.commands.acknowledged, report.commands.not_now,
      report.commands.error, report.commands.outstanding, report.commands.refused);
  for (const auto& [kind, count] : report.figures.errors_by_kind()) out += fmt::format("errors: {} {}\n", count, kind);
  out += fmt::format("harness: {:.2f} s CPU, peak RSS {} MiB\n",
                     report.harness.cpu_user_s + report.harness.cpu_system_s, report.harness.peak_rss_kib / 1024);
  std::size_t shown = 0;
  for (const auto& f : report.findings) {
    if (++shown > 10) break;
    out += fmt::format("finding: {} on {}{}: {}\n", f.invariant, f.channel,
                       f.command_uuid.empty() ? std::string() : " command " + f.command_uuid, f.detail);
  }
  if (report.findings_total > 0) out += fmt::format("{} invariant violations in all\n", report.findings_total);
  if (report.interrupted) out += "interrupted: " + report.interrupted_reason + "\n";
  return out;
}

}  // namespace

int run_load_command(LoadCommandOptions options, const std::atomic<bool>* stop) {
  auto shard = load::parse_shard(options.shard);
  if (!shard) return usage(shard.message());
  options.load.shard = *shard;
  if (options.duration_s <= 0 || options.duration_s > 7 * 24 * 3600.0)
    return usage("--duration wants 0 < S <= 604800 seconds");
  options.load.duration = from_seconds(options.duration_s);
  options.load.think = from_seconds(options.think_s);
  options.load.drain = from_seconds(options.drain_s);
  options.load.stop = stop;

  target::TargetProfile profile;
  try {
    profile = target::load_profile(options.target);
  } catch (const base::LoadError& e) {
    return usage(e.what());
  }
  if (profile.enrollment) {
    if (auto applied = target::apply_enrollment(profile); !applied) {
      fmt::print(stderr, "mdmconform: {}\n", applied.message());
      return 3;
    }
  }
  for (const auto& url : {profile.check_in_url, profile.server_url}) {
    auto parsed = net::parse_url(url);
    if (parsed && !net::is_loopback_host(parsed->host) && !options.allow_remote) {
      return usage(
          fmt::format("{} is not a loopback address: a load run is a flood; --allow-remote if you mean it", url));
    }
  }
  if (auto unreachable = target::probe_reachable(profile)) {
    fmt::print(stderr, "mdmconform: the target cannot be reached: {}\n", *unreachable);
    return 3;
  }

  const bool tty = !options.quiet && isatty(fileno(stderr)) == 1;
  if (tty) {
    options.load.on_progress = [duration = options.duration_s](const load::Progress& p) {
      load::LoadProgress line;
      line.elapsed_s = p.elapsed_s;
      line.duration_s = duration;
      line.exchanges = p.exchanges;
      line.exchanges_per_s = p.per_second;
      line.in_flight = p.in_flight;
      line.errors = p.errors;
      line.findings = p.findings;
      line.stopping = p.draining;
      fmt::print(stderr, "\r{}\x1b[K", load::load_progress_line(line));
      std::fflush(stderr);
    };
  }
  if (!options.quiet) {
    fmt::print("load: {} devices x ({} users + the device) against {} for {} s{}\n", options.load.devices,
               options.load.users_per_device, profile.name, options.duration_s,
               shard->count > 1 ? fmt::format(", shard {}/{}", shard->index, shard->count) : std::string());
    std::fflush(stdout);  // a caller waiting for the run to start sees it now, not at exit
  }
  auto ran = load::run_load(profile, options.load);
  if (tty) fmt::print(stderr, "\n");
  if (!ran) return usage(ran.message());
  const auto& report = *ran;

  const std::filesystem::path dir = options.out_dir.empty()
                                        ? std::filesystem::path("reports") / report::load_run_folder_name(report)
                                        : options.out_dir;
  if (auto written = report::write_load_run(report, dir); !written) {
    fmt::print(stderr, "mdmconform: could not write the report to {}: {}\n", dir.string(), written.message());
    return 2;
  }
  const auto exchanges = report.figures.exchanges();
  const auto errors = report.figures.errors();
  const double error_rate = exchanges > 0 ? static_cast<double>(errors) / static_cast<double>(exchanges) : 0.0;
  if (!options.quiet) fmt::print("{}", console_summary(report));
  fmt::print("report: {}/report.html\n", dir.string());
  if (report.interrupted) return 1;
  if (report.findings_total > 0) return 1;
  if (exchanges == 0 || error_rate > options.max_error_rate) {
    fmt::print(stderr, "mdmconform: {} of {} exchanges failed ({:.2f} %, above --max-error-rate {:.2f} %)\n", errors,
               exchanges, error_rate * 100, options.max_error_rate * 100);
    return 1;
  }
  return 0;
}

LoadCommand::LoadCommand(CLI::App& app) {
  load_ = app.add_subcommand("load", "run a fleet of emulated Macs against a target at once (docs/load.md)");
  auto& o = options_;
  load_->add_option("--target", o.target, "target profile (YAML)")->required();
  load_->add_option("--devices", o.load.devices, "devices in the fleet (all shards together)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  load_->add_option("--users-per-device", o.load.users_per_device, "users logged in on each device")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  load_->add_option("--duration", o.duration_s, "seconds of load, before the drain")->capture_default_str();
  load_->add_option("--rate", o.load.rate, "exchanges per second at most (0: as fast as the server answers)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  load_
      ->add_option("--commands-per-minute", o.load.commands_per_minute,
                   "commands queued per minute through the admin adapter")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  load_->add_option("--seed", o.load.seed, "the fleet's seed: the same devices in every shard and every run")
      ->capture_default_str();
  load_->add_option("--shard", o.shard, "I/N: this process runs the devices whose index is I modulo N")
      ->capture_default_str();
  load_->add_option("--out", o.out_dir, "report folder (default reports/<time>-load-<target>)");
  load_->add_option("--threads", o.load.threads, "threads (0: one per core)")->capture_default_str();
  load_->add_option("--max-in-flight", o.load.max_in_flight, "requests on the wire at once")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  load_
      ->add_option("--max-connections", o.load.max_connections,
                   "connections open at once (0: what the open-file limit leaves)")
      ->capture_default_str();
  load_->add_option("--think", o.think_s, "mean seconds between a channel's series")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 3600.0));
  load_->add_option("--drain", o.drain_s, "seconds after --duration for outstanding commands")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 600.0));
  load_->add_option("--not-now", o.load.not_now_ratio, "share of commands answered NotNow")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.5));
  load_->add_option("--error", o.load.error_ratio, "share of commands answered Error")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 0.5));
  load_->add_option("--max-error-rate", o.max_error_rate, "share of exchanges that may fail before the run fails")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  load_
      ->add_option("--series-per-channel", o.load.series_per_channel,
                   "a fixed amount of work: each channel runs N series, then stops (0: a steady state)")
      ->capture_default_str()
      ->check(CLI::Range(0, 100000));
  load_
      ->add_option("--commands-per-channel", o.load.commands_per_channel,
                   "with it: N commands queued for each channel as it enrolls")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  load_->add_flag("--allow-remote", o.allow_remote, "allow a target that is not on a loopback address");
  load_->add_flag("--quiet", o.quiet, "no progress line and no summary");
}

bool LoadCommand::was_chosen() const { return static_cast<bool>(*load_); }

std::optional<int> LoadCommand::dispatch(const std::atomic<bool>* stop) {
  if (!*load_) return std::nullopt;
  return run_load_command(options_, stop);
}

}  // namespace mdmc::cli
