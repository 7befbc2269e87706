// HboneStream: one CONNECT tunnel of an HBONE connection as a byte pipe — an
// http2::SessionStream (see common/http2/session_stream.h). This header keeps
// the HBONE name for the data path.
#pragma once

#include "common/hbone/conn.h"
#include "common/http2/session_stream.h"
