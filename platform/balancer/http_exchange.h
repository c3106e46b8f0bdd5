// One client connection of a service with the `http` handler. Requests are read one at a time;
// each goes to the backend the balancer picks for it (so a keep-alive client is balanced per
// request), over an upstream connection of its own, and its response comes back whole before
// the next request is taken (pipelined requests wait in the buffer). The client's keep-alive is
// kept when both the request and the response allow it.
#pragma once

#include <cstddef>
#include <string>

#include "balancer/http_framing.h"
#include "balancer/relay.h"

namespace kiln::balancer {

class HttpExchange {
  public:
    enum class Next {
        kContinue,     // wait for events (interest() says which)
        kNeedBackend,  // a request head is complete: connect an upstream and attach() it
        kRequestDone,  // the response is complete: release and close the upstream, then pump() again
        kClose,        // the exchange is over: close both sockets
    };

    explicit HttpExchange(int client) : client_(client) {}
    Next pump();
    void attach(int upstream);
    bool attached() const { return upstream_ >= 0; }
    Interest interest() const;

  private:
    static constexpr size_t kBufferLimit = 1 << 20;  // a slow side stops the other from reading

    bool read_client();
    bool forward_request();
    Next upstream_io();
    bool write_client();
    void refuse(const char* status);

    int client_, upstream_ = -1;
    std::string from_client_;  // read, not yet framed
    std::string to_upstream_;  // the current request's bytes, not yet sent
    std::string to_client_;    // response bytes, not yet sent
    HttpFraming request_{HttpFraming::Kind::kRequest};
    HttpFraming response_{HttpFraming::Kind::kResponse};
    bool client_ended_ = false;
    bool asked_ = false;    // kNeedBackend returned for the current request
    bool closing_ = false;  // send what is left to the client, then close
};

}  // namespace kiln::balancer
