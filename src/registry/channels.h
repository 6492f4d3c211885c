// Release channels in a registry: a channel is a tag ("stable", "canary")
// that moves. Every move — promote or rollback, with the digest, version, time
// and who — is its own small OCI artifact under a reserved tag in the same
// repository ("_kiln.move.CHANNEL.TIME.ID"), so any machine can read the
// history and roll back, and two machines moving a channel at once never
// overwrite each other's record (registries have no compare-and-swap).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "registry/client.h"

namespace kiln {

inline constexpr char kMoveMediaType[] =
    "application/vnd.kiln.channel-move.v1+json";

struct ChannelMove {
  std::string id;       // unique per move
  std::string action;   // "promote" or "rollback"
  std::string digest;   // what the channel points at after the move
  std::string from;     // what it pointed at before ("" if new)
  std::string version;  // the image's org.opencontainers.image.version, if any
  std::string time;     // RFC 3339, UTC
  std::string actor;    // who moved it (CI user where known)
  std::string ci;       // the CI run, where known
};

struct MoveContext {
  int64_t now = 0;  // Unix seconds
  std::string actor;
  std::string ci;
};

// The reserved tag prefix of a channel's moves: "_kiln.move.CHANNEL.".
std::string MoveTagPrefix(const std::string& channel);
std::vector<ChannelMove> ChannelHistory(RegistryClient& client,
                                        const std::string& repo,
                                        const std::string& channel);
ChannelMove Promote(RegistryClient& client, const std::string& repo,
                    const Digest& digest, const std::string& channel,
                    const MoveContext& context);
// Points the channel at the digest it held before its current one.
ChannelMove Rollback(RegistryClient& client, const std::string& repo,
                     const std::string& channel, const MoveContext& context);

}  // namespace kiln
