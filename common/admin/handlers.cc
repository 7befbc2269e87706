#include "common/admin/handlers.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <utility>

namespace ambit::admin {

namespace {

HttpResponse Text(int status, std::string body) {
  HttpResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

std::string HtmlEscape(std::string_view s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

std::string_view Describe(std::string_view path) {
  if (path == "/config_dump") return "agent state: workloads, services, policies, certificates";
  if (path == "/logging") return "POST: list log levels; ?level=<spec> sets, ?reset resets";
  if (path == "/quitquitquit") return "POST: drain and exit";
  if (path == "/metrics" || path == "/stats/prometheus") return "Prometheus / OpenMetrics";
  if (path == "/healthz/ready") return "readiness";
  return "";
}

}  // namespace

void AddMetricsHandlers(HttpServer& server, const metrics::Registry& registry) {
  auto fn = [&registry](const HttpRequest& req) {
    const bool om = metrics::WantsOpenMetrics(req.Header("accept"));
    HttpResponse r;
    r.content_type = std::string(om ? metrics::kOpenMetricsContentType
                                    : metrics::kPrometheusContentType);
    r.body = registry.Render(om);
    return r;
  };
  server.Handle("/metrics", {"GET"}, fn);
  server.Handle("/stats/prometheus", {"GET"}, fn);
}

void AddReadinessHandler(HttpServer& server, PendingFn pending) {
  server.Handle("/healthz/ready", {"GET"}, [pending = std::move(pending)](const HttpRequest&) {
    std::vector<std::string> left = pending();
    if (left.empty()) return Text(200, "ready\n");
    return Text(500, fmt::format("not ready: {}\n", fmt::join(left, ", ")));
  });
}

HttpResponse HandleLogging(base::Logger& logger, const HttpRequest& request) {
  if (request.HasQueryParam("reset")) {
    logger.Reset(base::LogLevel::kInfo);
  } else if (request.HasQueryParam("level")) {
    const std::string spec = request.QueryParam("level");
    if (spec.empty()) return Text(400, "invalid level: empty (use e.g. info or access:debug)\n");
    if (Status st = logger.SetLevels(spec); !st.ok()) {
      return Text(400, fmt::format("invalid level '{}': {} (levels: error, warn, info, debug, "
                                   "trace, off; per module as mod:level)\n",
                                   spec, std::string(st.message())));
    }
  }
  return Text(200, fmt::format("current log level is {}\n", logger.DescribeLevels()));
}

void AddLoggingHandler(HttpServer& server, base::Logger& logger) {
  server.Handle("/logging", {"POST"},
                [&logger](const HttpRequest& req) { return HandleLogging(logger, req); });
}

void AddQuitHandler(HttpServer& server, std::function<void()> drain) {
  server.Handle("/quitquitquit", {"POST"}, [drain = std::move(drain)](const HttpRequest&) {
    drain();
    return Text(200, "draining\n");
  });
}

void AddConfigDumpHandler(HttpServer& server, std::function<std::string()> dump) {
  server.Handle("/config_dump", {"GET"}, [dump = std::move(dump)](const HttpRequest&) {
    HttpResponse r;
    r.content_type = "application/json";
    r.body = dump();
    return r;
  });
}

void AddIndexHandler(HttpServer& server) {
  server.Handle("/", {"GET"}, [&server](const HttpRequest&) {
    std::string body = "<!DOCTYPE html>\n<html><head><title>ambit admin</title></head><body>\n"
                       "<h1>ambit admin</h1>\n<ul>\n";
    for (const std::string& p : server.paths()) {
      if (p == "/") continue;
      body += fmt::format("<li><a href=\"{0}\">{0}</a> {1}</li>\n", HtmlEscape(p),
                          HtmlEscape(Describe(p)));
    }
    body += "</ul>\n</body></html>\n";
    HttpResponse r;
    r.content_type = "text/html; charset=utf-8";
    r.body = std::move(body);
    return r;
  });
}

}  // namespace ambit::admin
