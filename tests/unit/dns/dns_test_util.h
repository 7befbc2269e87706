// Builders of DNS queries as byte arrays for the dns unit tests.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ambit::dns::testing {

inline void Put16(std::vector<uint8_t>& m, uint16_t v) {
  m.push_back(static_cast<uint8_t>(v >> 8));
  m.push_back(static_cast<uint8_t>(v & 0xff));
}

// A standard query (RD set) for `name`/`qtype`, with an OPT record
// advertising `edns_size` when non-zero.
inline std::vector<uint8_t> MakeQuery(std::string_view name, uint16_t qtype, uint16_t id = 0x1234,
                                      uint16_t edns_size = 0) {
  std::vector<uint8_t> m;
  Put16(m, id);
  Put16(m, 0x0100);
  Put16(m, 1);
  Put16(m, 0);
  Put16(m, 0);
  Put16(m, edns_size ? 1 : 0);
  while (!name.empty()) {
    size_t dot = name.find('.');
    std::string_view label = name.substr(0, dot);
    m.push_back(static_cast<uint8_t>(label.size()));
    m.insert(m.end(), label.begin(), label.end());
    name = dot == std::string_view::npos ? std::string_view() : name.substr(dot + 1);
  }
  m.push_back(0);
  Put16(m, qtype);
  Put16(m, 1);
  if (edns_size) {
    m.push_back(0);
    Put16(m, 41);
    Put16(m, edns_size);
    Put16(m, 0);
    Put16(m, 0x8000);  // DO
    Put16(m, 0);
  }
  return m;
}

}  // namespace ambit::dns::testing
