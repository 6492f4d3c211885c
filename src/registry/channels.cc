#include "registry/channels.h"

#include <chrono>
#include <random>
#include <thread>

#include "core/strings.h"

namespace kiln {
namespace {

constexpr char kEmptyMediaType[] = "application/vnd.oci.empty.v1+json";
constexpr int kAttempts = 8;

void CheckChannel(const std::string& channel) {
  if (!IsTag(channel) || IsTag(HistoryTag(channel)) == false ||
      StartsWith(channel, "_kiln.")) {
    throw UserError("channel " + Quote(channel) + " is not a valid tag name");
  }
}

nlohmann::json ToJson(const ChannelMove& m) {
  nlohmann::json j = {{"id", m.id},
                      {"action", m.action},
                      {"digest", m.digest},
                      {"time", m.time}};
  for (auto [k, v] : {std::pair{"from", &m.from},
                      {"version", &m.version},
                      {"actor", &m.actor},
                      {"ci", &m.ci}}) {
    if (!v->empty()) j[k] = *v;
  }
  return j;
}

ChannelMove FromJson(const nlohmann::json& j) {
  ChannelMove m;
  m.id = j.value("id", "");
  m.action = j.value("action", "");
  m.digest = j.value("digest", "");
  m.from = j.value("from", "");
  m.version = j.value("version", "");
  m.time = j.value("time", "");
  m.actor = j.value("actor", "");
  m.ci = j.value("ci", "");
  return m;
}

std::string NewId() {
  static thread_local std::mt19937_64 rng(std::random_device{}());
  char buf[17];
  snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(rng()));
  return buf;
}

void WriteHistory(RegistryClient& client, const std::string& repo,
                  const std::string& channel,
                  const std::vector<ChannelMove>& moves) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& m : moves) list.push_back(ToJson(m));
  nlohmann::json doc = {{"format", "kiln-channel-history"},
                        {"version", 1},
                        {"channel", channel},
                        {"moves", list}};
  Descriptor layer =
      client.UploadBytes(repo, CanonicalJson(doc), kHistoryMediaType);
  Descriptor config = client.UploadBytes(repo, "{}", kEmptyMediaType);
  Manifest m;
  m.artifact_type = kHistoryMediaType;
  m.config = config;
  m.layers = {layer};
  m.annotations["dev.kiln.channel"] = channel;
  client.PutManifest(repo, HistoryTag(channel), CanonicalJson(m.ToJson()),
                     media::kManifest);
}

// The digests the channel has held, as a stack: promotes push, rollbacks pop.
std::vector<std::string> Stack(const std::vector<ChannelMove>& moves) {
  std::vector<std::string> stack;
  for (const auto& m : moves) {
    if (m.action == "rollback") {
      if (!stack.empty()) stack.pop_back();
      if (stack.empty() || stack.back() != m.digest) stack.push_back(m.digest);
    } else if (stack.empty() || stack.back() != m.digest) {
      stack.push_back(m.digest);
    }
  }
  return stack;
}

std::string VersionOf(const RegistryClient::FetchedManifest& m) {
  try {
    auto j = nlohmann::json::parse(m.bytes);
    return j["annotations"].value(annotation::kVersion, "");
  } catch (const std::exception&) {
    return "";
  }
}

// Moves the channel to `target` and records `move`, retrying until the
// history holds it.
ChannelMove Move(
    RegistryClient& client, const std::string& repo, const std::string& channel,
    const std::function<ChannelMove(const std::vector<ChannelMove>&)>& decide) {
  for (int attempt = 1;; ++attempt) {
    std::vector<ChannelMove> history = ChannelHistory(client, repo, channel);
    ChannelMove move = decide(history);
    auto target = client.GetManifest(repo, move.digest);
    if (!target)
      throw UserError("docker://" + client.host() + "/" + repo + "@" +
                      move.digest + ": no such image in the registry");
    move.version = VersionOf(*target);
    client.PutManifest(repo, channel, target->bytes, target->media_type);
    history.push_back(move);
    WriteHistory(client, repo, channel, history);
    // Another writer may have replaced the history in between: check.
    for (const auto& m : ChannelHistory(client, repo, channel)) {
      if (m.id == move.id) return move;
    }
    if (attempt >= kAttempts) {
      throw EnvError("channel " + channel +
                         ": could not record the move after " +
                         std::to_string(kAttempts) +
                         " attempts (too many concurrent moves)",
                     true);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50 * attempt));
  }
}

}  // namespace

std::string HistoryTag(const std::string& channel) {
  return "_kiln.history." + channel;
}

std::vector<ChannelMove> ChannelHistory(RegistryClient& client,
                                        const std::string& repo,
                                        const std::string& channel) {
  CheckChannel(channel);
  auto m = client.GetManifest(repo, HistoryTag(channel));
  if (!m) return {};
  std::string what =
      "docker://" + client.host() + "/" + repo + ":" + HistoryTag(channel);
  Manifest manifest = Manifest::Parse(m->bytes, what);
  if (manifest.artifact_type != kHistoryMediaType ||
      manifest.layers.size() != 1) {
    throw EnvError(what + " is not a kiln channel history");
  }
  auto doc = ParseJson(client.ReadBlob(repo, manifest.layers[0]), what);
  if (doc.value("format", "") != "kiln-channel-history" ||
      doc.value("version", 0) != 1) {
    throw EnvError(what + ": unknown history format (a newer kiln?)");
  }
  std::vector<ChannelMove> moves;
  for (const auto& j : doc["moves"]) moves.push_back(FromJson(j));
  return moves;
}

ChannelMove Promote(RegistryClient& client, const std::string& repo,
                    const Digest& digest, const std::string& channel,
                    const MoveContext& context) {
  CheckChannel(channel);
  return Move(client, repo, channel, [&](const std::vector<ChannelMove>&) {
    ChannelMove m;
    m.id = NewId();
    m.action = "promote";
    m.digest = digest.ToString();
    auto current = client.ManifestDigest(repo, channel);
    m.from = current ? current->ToString() : "";
    m.time = Rfc3339(context.now);
    m.actor = context.actor;
    m.ci = context.ci;
    return m;
  });
}

ChannelMove Rollback(RegistryClient& client, const std::string& repo,
                     const std::string& channel, const MoveContext& context) {
  CheckChannel(channel);
  return Move(
      client, repo, channel, [&](const std::vector<ChannelMove>& history) {
        std::vector<std::string> stack = Stack(history);
        if (stack.size() < 2) {
          throw UserError("channel " + channel + " of docker://" +
                          client.host() + "/" + repo +
                          " has no earlier digest to roll back to" +
                          (history.empty() ? " (it has no history)" : ""));
        }
        ChannelMove m;
        m.id = NewId();
        m.action = "rollback";
        m.digest = stack[stack.size() - 2];
        auto current = client.ManifestDigest(repo, channel);
        m.from = current ? current->ToString() : "";
        m.time = Rfc3339(context.now);
        m.actor = context.actor;
        m.ci = context.ci;
        return m;
      });
}

}  // namespace kiln
