// HTTP dates (RFC 9110 5.6.7 IMF-fixdate and the obsolete RFC 850 form with
// '-' and two-digit years), as cookie Expires attributes carry them. Pure:
// no allocation, no libstdc++ runtime (compiled into libidflow-tap.so).
#ifndef IDFLOW_AGENT_TAP_SNIFF_HTTP_DATE_H_
#define IDFLOW_AGENT_TAP_SNIFF_HTTP_DATE_H_

#include <stddef.h>
#include <stdint.h>

namespace idflow::tap {

// "Wed, 21 Oct 2026 07:28:00 GMT" (also with '-' between day, month and
// year, two-digit years) as unix seconds; false when it is not a date.
bool ParseHttpDate(const char* s, size_t n, int64_t* unix_seconds);

}  // namespace idflow::tap

#endif  // IDFLOW_AGENT_TAP_SNIFF_HTTP_DATE_H_
