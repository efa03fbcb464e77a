#pragma once
// What this process and this machine have in memory, for the models that check before they
// allocate and the commands that report what they used.
#include <cstdint>
#include <optional>

namespace chatrec::memory {

// Peak resident set size of this process (VmHWM), in MiB; 0 where the system does not say.
double peak_rss_mib();

// Memory the system can give without swapping (MemAvailable), in bytes; nullopt where it does not
// say.
std::optional<std::uint64_t> available_bytes();

}  // namespace chatrec::memory
