#include "registry/channels.h"

#include <algorithm>
#include <cstdio>
#include <random>

#include "core/strings.h"

namespace kiln {
namespace {

constexpr char kMoveAnnotation[] = "dev.kiln.move";
constexpr size_t kMaxChannelLength = 64;  // the move tags must stay under 128

void CheckChannel(const std::string& channel) {
  if (!IsTag(channel) || channel.size() > kMaxChannelLength ||
      StartsWith(channel, "_kiln.")) {
    throw UserError("channel " + Quote(channel) +
                    " is not a valid channel name (a tag of at most " +
                    std::to_string(kMaxChannelLength) + " characters)");
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

// "20261127T053000Z": sorts like the time it names.
std::string CompactTime(int64_t unix_seconds) {
  std::string out;
  for (char c : Rfc3339(unix_seconds)) {
    if (c != '-' && c != ':') out += c;
  }
  return out;
}

// The digests the channel has held, as a stack: promotes push, rollbacks pop.
std::vector<std::string> Stack(const std::vector<ChannelMove>& moves) {
  std::vector<std::string> stack;
  for (const auto& m : moves) {
    if (m.action == "rollback" && !stack.empty()) stack.pop_back();
    if (stack.empty() || stack.back() != m.digest) stack.push_back(m.digest);
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

// A channel's move tags, in order: "PREFIX000042.20261127T053000Z.ID". The
// sequence number orders the moves; time and a random id keep two moves made
// at once from sharing a tag.
std::vector<std::string> MoveTags(RegistryClient& client,
                                  const std::string& repo,
                                  const std::string& channel) {
  std::vector<std::string> tags;
  for (auto& t : client.ListTags(repo)) {
    if (StartsWith(t, MoveTagPrefix(channel))) tags.push_back(std::move(t));
  }
  std::sort(tags.begin(), tags.end());
  return tags;
}

uint64_t NextSequence(const std::vector<std::string>& tags,
                      const std::string& channel) {
  uint64_t next = 1;
  for (const auto& t : tags) {
    auto seq = ParseUint(t.substr(MoveTagPrefix(channel).size(), 6));
    if (seq && *seq >= next) next = *seq + 1;
  }
  return next;
}

// Points the channel at a manifest of the repository; returns it.
RegistryClient::FetchedManifest PointChannel(RegistryClient& client,
                                             const std::string& repo,
                                             const std::string& channel,
                                             const std::string& digest) {
  auto target = client.GetManifest(repo, digest);
  if (!target) {
    throw UserError("docker://" + client.host() + "/" + repo + "@" + digest +
                    ": no such image in the registry");
  }
  client.PutManifest(repo, channel, target->bytes, target->media_type);
  return *target;
}

// Moves the channel and records the move as its own artifact; then makes sure
// the channel ends where the history does, so that when two machines move it
// at once both converge on the history's last word.
ChannelMove Move(RegistryClient& client, const std::string& repo,
                 const std::string& channel, ChannelMove move, int64_t now,
                 const std::vector<std::string>& tags) {
  move.version = VersionOf(PointChannel(client, repo, channel, move.digest));
  std::string record = CanonicalJson(ToJson(move));
  Manifest m;
  m.artifact_type = kMoveMediaType;
  m.config = client.UploadBytes(repo, "{}", media::kEmpty);
  m.layers = {client.UploadBytes(repo, record, kMoveMediaType)};
  m.annotations[kMoveAnnotation] = record;
  m.annotations["dev.kiln.channel"] = channel;
  char seq[24];
  snprintf(seq, sizeof seq, "%06llu",
           static_cast<unsigned long long>(NextSequence(tags, channel)));
  client.PutManifest(repo,
                     MoveTagPrefix(channel) + seq + "." + CompactTime(now) +
                         "." + move.id.substr(0, 8),
                     CanonicalJson(m.ToJson()), media::kManifest);
  // Another machine's correction may have been made from a history that
  // lacked this move, so after each correction look again: every machine's
  // last look sees every record written before it, and all agree on the last.
  for (int look = 0; look < 8; ++look) {
    std::vector<std::string> held =
        Stack(ChannelHistory(client, repo, channel));
    if (held.empty()) break;
    auto current = client.ManifestDigest(repo, channel);
    if (current && current->ToString() == held.back()) break;
    PointChannel(client, repo, channel, held.back());
  }
  return move;
}

ChannelMove NewMove(RegistryClient& client, const std::string& repo,
                    const std::string& channel, const char* action,
                    const std::string& digest, const MoveContext& context) {
  ChannelMove m;
  m.id = NewId();
  m.action = action;
  m.digest = digest;
  auto current = client.ManifestDigest(repo, channel);
  m.from = current ? current->ToString() : "";
  m.time = Rfc3339(context.now);
  m.actor = context.actor;
  m.ci = context.ci;
  return m;
}

}  // namespace

std::string MoveTagPrefix(const std::string& channel) {
  return "_kiln.move." + channel + ".";
}

std::vector<ChannelMove> ChannelHistory(RegistryClient& client,
                                        const std::string& repo,
                                        const std::string& channel) {
  CheckChannel(channel);
  std::vector<ChannelMove> moves;
  for (const auto& t : MoveTags(client, repo, channel)) {
    std::string what = "docker://" + client.host() + "/" + repo + ":" + t;
    auto m = client.GetManifest(repo, t);
    if (!m) continue;  // deleted since the listing
    Manifest manifest = Manifest::Parse(m->bytes, what);
    auto it = manifest.annotations.find(kMoveAnnotation);
    if (manifest.artifact_type != kMoveMediaType ||
        it == manifest.annotations.end()) {
      throw EnvError(what + " is not a kiln channel move");
    }
    moves.push_back(FromJson(ParseJson(it->second, what)));
  }
  return moves;
}

ChannelMove Promote(RegistryClient& client, const std::string& repo,
                    const Digest& digest, const std::string& channel,
                    const MoveContext& context) {
  CheckChannel(channel);
  std::vector<std::string> tags = MoveTags(client, repo, channel);
  return Move(
      client, repo, channel,
      NewMove(client, repo, channel, "promote", digest.ToString(), context),
      context.now, tags);
}

ChannelMove Rollback(RegistryClient& client, const std::string& repo,
                     const std::string& channel, const MoveContext& context) {
  CheckChannel(channel);
  std::vector<std::string> tags = MoveTags(client, repo, channel);
  std::vector<ChannelMove> history = ChannelHistory(client, repo, channel);
  std::vector<std::string> stack = Stack(history);
  if (stack.size() < 2) {
    throw UserError("channel " + channel + " of docker://" + client.host() +
                    "/" + repo + " has no earlier digest to roll back to" +
                    (history.empty() ? " (it has no history)" : ""));
  }
  return Move(client, repo, channel,
              NewMove(client, repo, channel, "rollback",
                      stack[stack.size() - 2], context),
              context.now, tags);
}

}  // namespace kiln
