#include <doctest/doctest.h>

#include <string>

#include "agent/capture/netns_exec.h"

namespace ambit::capture {

TEST_CASE("FindProgram finds sh and names the package when missing") {
  auto sh = FindProgram("sh", "dash");
  REQUIRE(sh.ok());
  CHECK(sh->find("/sh") != std::string::npos);
  auto missing = FindProgram("ambit-no-such-tool", "ambit-tools");
  REQUIRE_FALSE(missing.ok());
  CHECK(absl::IsNotFound(missing.status()));
  CHECK(std::string(missing.status().message()).find("install the 'ambit-tools' package") !=
        std::string::npos);
}

TEST_CASE("ExecInNetns feeds stdin and captures stdout, stderr and exit code") {
  auto sh = FindProgram("sh", "dash");
  REQUIRE(sh.ok());
  std::string big(200000, 'x');  // larger than a pipe buffer: no deadlock
  auto r = ExecInNetns(nullptr, {*sh, "-c", "cat; echo oops >&2; exit 3"}, big);
  REQUIRE(r.ok());
  CHECK(r->exit_code == 3);
  CHECK(r->out == big);
  CHECK(r->err == "oops\n");

  auto none = ExecInNetns(nullptr, {"/nonexistent/ambit-tool"}, "");
  REQUIRE_FALSE(none.ok());
  CHECK(std::string(none.status().message()) == "cannot execute /nonexistent/ambit-tool");
}

}  // namespace ambit::capture
