#include "common/hbone/conn.h"

#include "common/base/error.h"
#include "common/hbone/authority.h"
#include "common/hbone/connect_codec.h"
#include "common/http2/tls_transport.h"

namespace ambit::hbone {

namespace {

using base::ErrorReason;
using base::WithReason;

io::Task<StatusOr<std::shared_ptr<HboneConn>>> Establish(
    io::Loop& loop, net::Fd fd, StatusOr<std::unique_ptr<tls::TlsEngine>> engine,
    ConnOptions options, http2::H2Role role, HboneConn::StreamHandler handler) {
  if (!engine.ok()) co_return WithReason(engine.status(), ErrorReason::kTlsHandshake);
  auto transport = std::make_unique<http2::TlsTransport>(loop, std::move(fd), std::move(*engine),
                                                         options.read_buffer);
  io::CancelScope scope;
  Status st = co_await transport->Handshake(options.handshake_timeout, scope);
  if (!st.ok()) co_return st;
  co_return http2::Session::Start(loop, std::move(transport), role, options.session(),
                                  std::move(handler));
}

}  // namespace

io::Task<StatusOr<std::shared_ptr<HboneConn>>> Handshake(
    io::Loop& loop, net::Fd fd, std::shared_ptr<const tls::TlsContext> ctx,
    std::vector<identity::Identity> expected, ConnOptions options) {
  auto engine = tls::TlsEngine::NewClient(std::move(ctx), std::move(expected));
  co_return co_await Establish(loop, std::move(fd), std::move(engine), options,
                               http2::H2Role::kClient, {});
}

io::Task<StatusOr<std::shared_ptr<HboneConn>>> Accept(io::Loop& loop, net::Fd fd,
                                                      std::shared_ptr<const tls::TlsContext> ctx,
                                                      ConnOptions options,
                                                      HboneConn::StreamHandler handler) {
  auto engine = tls::TlsEngine::NewServer(std::move(ctx));
  co_return co_await Establish(loop, std::move(fd), std::move(engine), options,
                               http2::H2Role::kServer, std::move(handler));
}

io::Task<StatusOr<std::unique_ptr<HboneStream>>> OpenConnect(HboneConn& conn,
                                                             std::string authority,
                                                             http2::H2Headers headers,
                                                             base::Duration timeout) {
  auto target = ParseAuthority(authority);
  if (!target.ok()) co_return target.status();
  auto stream = conn.OpenConnect(authority, headers);
  if (!stream.ok()) co_return stream.status();
  auto response = co_await (*stream)->AwaitHeaders({.timeout = timeout});
  if (!response.ok()) co_return response.status();
  Status st = CheckConnectResponse(*response, *target);
  if (!st.ok()) co_return st;
  co_return std::move(*stream);
}

Status RespondConnect(HboneStream& stream, int status, const http2::H2Headers& headers) {
  return stream.Respond(status, headers, /*end_stream=*/status != 200);
}

}  // namespace ambit::hbone
