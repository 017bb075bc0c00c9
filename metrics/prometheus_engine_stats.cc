#include "metrics/prometheus_engine_stats.h"

#include <atomic>
#include <limits>

#include "lazyblob_version.h"  // generated: LAZYBLOB_VERSION, LAZYBLOB_REVISION
#include "prometheus/text_serializer.h"

namespace lazyblob {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

constexpr const char* kOpNames[StatsShard::kOps] = {"open", "read", "close"};
constexpr const char* kResultNames[StatsShard::kResults] = {"ok", "error", "dropped"};
constexpr const char* kLookupNames[StatsShard::kLookupResults] = {"cache_hit", "store_hit",
                                                                  "missing", "corrupt"};

static_assert(StatsShard::kStages == kStageCount);

std::atomic<std::uint64_t> g_next_id{1};

std::uint64_t Load(const std::atomic<std::uint64_t>& a) {
  return a.load(std::memory_order_relaxed);
}
std::int64_t Load(const std::atomic<std::int64_t>& a) { return a.load(std::memory_order_relaxed); }
double Load(const std::atomic<double>& a) { return a.load(std::memory_order_relaxed); }

MetricFamily Family(std::string name, std::string help, MetricType type) {
  MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

ClientMetric& AddMetric(MetricFamily& f, std::vector<ClientMetric::Label> labels = {}) {
  f.metric.emplace_back();
  f.metric.back().label = std::move(labels);
  return f.metric.back();
}

MetricFamily Counter(std::string name, std::string help, double value) {
  MetricFamily f = Family(std::move(name), std::move(help), MetricType::Counter);
  AddMetric(f).counter.value = value;
  return f;
}

MetricFamily Gauge(std::string name, std::string help, double value) {
  MetricFamily f = Family(std::move(name), std::move(help), MetricType::Gauge);
  AddMetric(f).gauge.value = value;
  return f;
}

// Sums of every shard: what a scrape publishes.
struct Totals {
  std::uint64_t requests[StatsShard::kOps][StatsShard::kResults] = {};
  std::uint64_t read_latency_buckets[StatsShard::kBuckets] = {};
  double read_latency_sum = 0;
  std::uint64_t requested_bytes = 0, written_bytes = 0, written_ahead_bytes = 0;
  std::uint64_t chunk_lookups[StatsShard::kLookupResults] = {};
  std::uint64_t decompressions = 0;
  double decompress_seconds = 0;
  std::uint64_t stage_ops[StatsShard::kStages] = {};
  double stage_seconds[StatsShard::kStages] = {};
  std::int64_t in_flight = 0, queue_depth = 0;
  std::uint64_t malformed_messages = 0, device_read_pressure = 0, worker_restarts = 0, restores = 0;
  std::uint64_t prefetch_bytes = 0, prefetch_hits = 0, prefetch_wasted_bytes = 0, replays = 0;
  std::uint64_t traces_recorded = 0;
  double replay_seconds = 0;

  void Add(const StatsShard& s) {
    for (int o = 0; o < StatsShard::kOps; ++o) {
      for (int r = 0; r < StatsShard::kResults; ++r) requests[o][r] += Load(s.requests[o][r]);
    }
    for (int b = 0; b < StatsShard::kBuckets; ++b) {
      read_latency_buckets[b] += Load(s.read_latency_buckets[b]);
    }
    read_latency_sum += Load(s.read_latency_sum);
    requested_bytes += Load(s.requested_bytes);
    written_bytes += Load(s.written_bytes);
    written_ahead_bytes += Load(s.written_ahead_bytes);
    for (int l = 0; l < StatsShard::kLookupResults; ++l)
      chunk_lookups[l] += Load(s.chunk_lookups[l]);
    decompressions += Load(s.decompressions);
    decompress_seconds += Load(s.decompress_seconds);
    for (int i = 0; i < StatsShard::kStages; ++i) {
      stage_ops[i] += Load(s.stage_ops[i]);
      stage_seconds[i] += Load(s.stage_seconds[i]);
    }
    in_flight += Load(s.in_flight);
    queue_depth += Load(s.queue_depth);
    malformed_messages += Load(s.malformed_messages);
    device_read_pressure += Load(s.device_read_pressure);
    worker_restarts += Load(s.worker_restarts);
    restores += Load(s.restores);
    prefetch_bytes += Load(s.prefetch_bytes);
    prefetch_hits += Load(s.prefetch_hits);
    prefetch_wasted_bytes += Load(s.prefetch_wasted_bytes);
    replays += Load(s.replays);
    replay_seconds += Load(s.replay_seconds);
    traces_recorded += Load(s.traces_recorded);
  }
};

}  // namespace

std::string BuildVersion() { return LAZYBLOB_VERSION; }
std::string BuildRevision() { return LAZYBLOB_REVISION; }

Status PrometheusEngineStatsOptions::Validate() const {
  if (max_blob_series < 0) return InvalidArgument("metrics: max_blob_series must be >= 0");
  if (version.empty()) return InvalidArgument("metrics: version must not be empty");
  if (revision.empty()) return InvalidArgument("metrics: revision must not be empty");
  for (char c : frontend) {
    if (!(c >= 'a' && c <= 'z') && c != '_') {
      return InvalidArgument("metrics: frontend must be lower-case letters and '_'");
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<PrometheusEngineStats>> PrometheusEngineStats::Open(
    const PrometheusEngineStatsOptions& options) {
  LB_RETURN_IF_ERROR(options.Validate());
  return std::unique_ptr<PrometheusEngineStats>(new PrometheusEngineStats(options));
}

PrometheusEngineStats::PrometheusEngineStats(const PrometheusEngineStatsOptions& options)
    : options_(options),
      id_(g_next_id.fetch_add(1, std::memory_order_relaxed)),
      registry_(std::make_shared<ShardRegistry>()) {}

void PrometheusEngineStats::RequestDone(RequestOp op, RequestResult result, double seconds) {
  const int o = static_cast<int>(op), r = static_cast<int>(result);
  if (o < 0 || o >= StatsShard::kOps || r < 0 || r >= StatsShard::kResults) return;
  StatsShard& s = Shard();
  StatsShard::Add(s.requests[o][r], 1);
  if (op != RequestOp::kRead || result == RequestResult::kDropped) return;
  int b = 0;
  while (b < static_cast<int>(kReadLatencyBucketsSeconds.size()) &&
         seconds > kReadLatencyBucketsSeconds[b]) {
    ++b;
  }
  StatsShard::Add(s.read_latency_buckets[b], 1);
  StatsShard::Add(s.read_latency_sum, seconds);
}

void PrometheusEngineStats::BytesRequested(std::uint64_t bytes) {
  StatsShard::Add(Shard().requested_bytes, bytes);
}

void PrometheusEngineStats::BytesWritten(std::uint64_t bytes, std::uint64_t ahead_bytes) {
  StatsShard& s = Shard();
  StatsShard::Add(s.written_bytes, bytes);
  StatsShard::Add(s.written_ahead_bytes, ahead_bytes);
}

void PrometheusEngineStats::ChunkLookup(ChunkLookupResult result) {
  const int l = static_cast<int>(result);
  if (l < 0 || l >= StatsShard::kLookupResults) return;
  StatsShard::Add(Shard().chunk_lookups[l], 1);
}

void PrometheusEngineStats::Decompressed(double seconds) {
  StatsShard& s = Shard();
  StatsShard::Add(s.decompressions, 1);
  StatsShard::Add(s.decompress_seconds, seconds);
}

void PrometheusEngineStats::StageTime(Stage stage, double seconds) {
  const int i = static_cast<int>(stage);
  if (i < 0 || i >= StatsShard::kStages) return;
  StatsShard& s = Shard();
  StatsShard::Add(s.stage_ops[i], 1);
  StatsShard::Add(s.stage_seconds[i], seconds);
}

void PrometheusEngineStats::InFlight(int delta) { StatsShard::Add(Shard().in_flight, delta); }
void PrometheusEngineStats::QueueDepth(int delta) { StatsShard::Add(Shard().queue_depth, delta); }
void PrometheusEngineStats::MalformedMessage() { StatsShard::Add(Shard().malformed_messages, 1); }
void PrometheusEngineStats::DeviceReadPressure() {
  StatsShard::Add(Shard().device_read_pressure, 1);
}
void PrometheusEngineStats::WorkerRestart() { StatsShard::Add(Shard().worker_restarts, 1); }
void PrometheusEngineStats::Restored() { StatsShard::Add(Shard().restores, 1); }
void PrometheusEngineStats::PrefetchWritten(std::uint64_t bytes) {
  StatsShard::Add(Shard().prefetch_bytes, bytes);
}
void PrometheusEngineStats::PrefetchHit() { StatsShard::Add(Shard().prefetch_hits, 1); }
void PrometheusEngineStats::PrefetchWasted(std::uint64_t bytes) {
  StatsShard::Add(Shard().prefetch_wasted_bytes, bytes);
}
void PrometheusEngineStats::ReplayDone(double seconds) {
  StatsShard& s = Shard();
  StatsShard::Add(s.replays, 1);
  StatsShard::Add(s.replay_seconds, seconds);
}
void PrometheusEngineStats::TraceRecorded() { StatsShard::Add(Shard().traces_recorded, 1); }

void PrometheusEngineStats::OpenObjects(int delta, std::string_view blob_id) {
  MutexLock lock(&mu_);
  open_objects_ += delta;
  if (!options_.per_blob_gauge || blob_id.empty()) return;
  auto it = open_blobs_.try_emplace(std::string(blob_id), 0).first;
  it->second += delta;
  if (it->second <= 0) open_blobs_.erase(it);  // bounded by what is open
}

void PrometheusEngineStats::SetStoreGauges(const StoreGauges& gauges) {
  MutexLock lock(&mu_);
  store_gauges_ = gauges;
  have_store_gauges_ = true;
}

void PrometheusEngineStats::CollectShards(std::vector<MetricFamily>& out) const {
  Totals t;
  registry_->ForEach([&t](const StatsShard& s) { t.Add(s); });

  MetricFamily req = Family("lazyblob_requests_total",
                            "Kernel requests answered, by op and result.", MetricType::Counter);
  for (int o = 0; o < StatsShard::kOps; ++o) {
    for (int r = 0; r < StatsShard::kResults; ++r) {
      AddMetric(req, {{"op", kOpNames[o]}, {"result", kResultNames[r]}}).counter.value =
          static_cast<double>(t.requests[o][r]);
    }
  }
  out.push_back(std::move(req));

  MetricFamily lat = Family("lazyblob_read_latency_seconds",
                            "READ requests from the message read to the answer (ok or error).",
                            MetricType::Histogram);
  ClientMetric::Histogram& h = AddMetric(lat).histogram;
  std::uint64_t cumulative = 0;
  for (int b = 0; b < StatsShard::kBuckets; ++b) {
    cumulative += t.read_latency_buckets[b];
    const double bound = b < static_cast<int>(kReadLatencyBucketsSeconds.size())
                             ? kReadLatencyBucketsSeconds[b]
                             : std::numeric_limits<double>::infinity();
    h.bucket.push_back({cumulative, bound});
  }
  h.sample_count = cumulative;  // == the +Inf bucket even mid-update
  h.sample_sum = t.read_latency_sum;
  out.push_back(std::move(lat));

  out.push_back(Counter("lazyblob_read_requested_bytes_total", "Bytes asked for by READs.",
                        static_cast<double>(t.requested_bytes)));
  out.push_back(Counter("lazyblob_written_bytes_total", "Bytes written into cache files.",
                        static_cast<double>(t.written_bytes)));
  out.push_back(Counter("lazyblob_written_ahead_bytes_total",
                        "Bytes written into cache files beyond what READs asked for.",
                        static_cast<double>(t.written_ahead_bytes)));

  MetricFamily look =
      Family("lazyblob_chunk_lookups_total", "Chunk lookups, by outcome.", MetricType::Counter);
  for (int l = 0; l < StatsShard::kLookupResults; ++l) {
    AddMetric(look, {{"result", kLookupNames[l]}}).counter.value =
        static_cast<double>(t.chunk_lookups[l]);
  }
  out.push_back(std::move(look));

  out.push_back(Counter("lazyblob_decompressions_total", "Chunks decompressed.",
                        static_cast<double>(t.decompressions)));
  out.push_back(Counter("lazyblob_decompress_seconds_total", "Time spent decompressing chunks.",
                        t.decompress_seconds));
  MetricFamily stage_seconds =
      Family("lazyblob_stage_seconds_total",
             "Time spent serving READs, by stage: lookup, read, decompress, verify (per chunk "
             "loaded from the store), write (per pwritev of a run of chunks), complete (per READ).",
             MetricType::Counter);
  MetricFamily stage_ops = Family("lazyblob_stage_operations_total",
                                  "Timed operations behind lazyblob_stage_seconds_total, by stage.",
                                  MetricType::Counter);
  for (int i = 0; i < StatsShard::kStages; ++i) {
    const std::string name(StageName(static_cast<Stage>(i)));
    AddMetric(stage_seconds, {{"stage", name}}).counter.value = t.stage_seconds[i];
    AddMetric(stage_ops, {{"stage", name}}).counter.value = static_cast<double>(t.stage_ops[i]);
  }
  out.push_back(std::move(stage_seconds));
  out.push_back(std::move(stage_ops));
  out.push_back(Gauge("lazyblob_requests_in_flight", "Requests being served now.",
                      static_cast<double>(t.in_flight)));
  out.push_back(Gauge("lazyblob_queue_depth", "Requests read but not yet picked up by a worker.",
                      static_cast<double>(t.queue_depth)));
  out.push_back(Counter("lazyblob_malformed_messages_total", "Kernel messages that did not decode.",
                        static_cast<double>(t.malformed_messages)));
  out.push_back(Counter("lazyblob_device_read_pressure_total",
                        "Device reads that failed for lack of fds or memory (EMFILE, ENFILE, "
                        "ENOMEM); the daemon backed off and read on.",
                        static_cast<double>(t.device_read_pressure)));
  out.push_back(Counter("lazyblob_worker_restarts_total", "Worker threads restarted.",
                        static_cast<double>(t.worker_restarts)));
  out.push_back(Counter("lazyblob_restores_total",
                        "Times the daemon restored its state from the kernel after a restart.",
                        static_cast<double>(t.restores)));
  out.push_back(Counter("lazyblob_prefetch_bytes_total",
                        "Bytes access-trace replay wrote into cache files ahead of demand.",
                        static_cast<double>(t.prefetch_bytes)));
  out.push_back(Counter("lazyblob_prefetch_hits_total",
                        "Demand requests whose chunks replay had all written already.",
                        static_cast<double>(t.prefetch_hits)));
  out.push_back(Counter("lazyblob_prefetch_wasted_bytes_total",
                        "Bytes replay wrote that no demand request asked for before the file "
                        "closed (fanotify front end; cachefiles never asks for written ranges, "
                        "so there it is an upper bound).",
                        static_cast<double>(t.prefetch_wasted_bytes)));
  out.push_back(Counter("lazyblob_replays_total", "Access-trace replays that ended.",
                        static_cast<double>(t.replays)));
  out.push_back(Counter("lazyblob_replay_seconds_total",
                        "Time access-trace replays ran, from OPEN to their end.",
                        t.replay_seconds));
  out.push_back(Counter("lazyblob_traces_recorded_total",
                        "Access records saved (what a start read in its first seconds).",
                        static_cast<double>(t.traces_recorded)));
}

void PrometheusEngineStats::CollectOthers(std::vector<MetricFamily>& out) const {
  MutexLock lock(&mu_);
  out.push_back(Gauge("lazyblob_open_objects", "Cache objects open (OPEN answered, not closed).",
                      static_cast<double>(open_objects_)));
  if (options_.per_blob_gauge) {
    MetricFamily f = Family("lazyblob_open_blob",
                            "Open cache objects per blob id (at most max_blob_series ids, in id "
                            "order; lazyblob_open_blob_unlisted counts the rest).",
                            MetricType::Gauge);
    std::int64_t unlisted = 0;
    int listed = 0;
    for (const auto& [blob, count] : open_blobs_) {
      if (listed < options_.max_blob_series) {
        AddMetric(f, {{"blob", blob}}).gauge.value = static_cast<double>(count);
        ++listed;
      } else {
        ++unlisted;
      }
    }
    out.push_back(std::move(f));
    out.push_back(Gauge("lazyblob_open_blob_unlisted",
                        "Open blob ids left out of lazyblob_open_blob by its series cap.",
                        static_cast<double>(unlisted)));
  }
  if (have_store_gauges_) {
    for (auto& f : StoreGaugeFamilies(store_gauges_)) out.push_back(std::move(f));
  }
}

std::vector<MetricFamily> PrometheusEngineStats::Collect() const {
  std::vector<MetricFamily> out;
  CollectShards(out);
  CollectOthers(out);
  if (!options_.frontend.empty()) {
    for (MetricFamily& f : out) {
      for (ClientMetric& m : f.metric) m.label.push_back({"frontend", options_.frontend});
    }
  }
  MetricFamily info =
      Family("lazyblob_build_info", "Always 1; the labels say which lazyblob is running.",
             MetricType::Gauge);
  AddMetric(info, {{"revision", options_.revision}, {"version", options_.version}}).gauge.value = 1;
  out.push_back(std::move(info));
  return out;
}

std::string PrometheusEngineStats::TextExposition() const {
  return prometheus::TextSerializer().Serialize(Collect());
}

}  // namespace lazyblob
