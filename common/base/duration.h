// Duration text as flags, environment variables and config use it:
// "250ms", "10s", "1.5s", "5m", "24h", "100us", or a bare number of seconds.
#pragma once

#include <string_view>

#include "common/base/clock.h"
#include "common/base/status.h"

namespace ambit::base {

StatusOr<Duration> ParseDuration(std::string_view text);

}  // namespace ambit::base
