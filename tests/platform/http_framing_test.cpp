// Where HTTP/1.1 messages end, as the balancer's http handler sees them.
#include "balancer/http_framing.h"

#include <gtest/gtest.h>

#include <string>

namespace {

using kiln::balancer::HttpFraming;
using Kind = HttpFraming::Kind;

// Feeds `stream` in pieces of `step` bytes; returns how many bytes the message took.
size_t frame(HttpFraming& f, const std::string& stream, size_t step = 1 << 20) {
    size_t used = 0;
    while (used < stream.size() && !f.done() && !f.failed()) {
        const size_t n = std::min(step, stream.size() - used);
        const size_t took = f.feed(stream.data() + used, n);
        used += took;
        if (took < n) break;
    }
    return used;
}

TEST(HttpFraming, ARequestWithoutABodyEndsAtItsHead) {
    const std::string get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    HttpFraming f(Kind::kRequest);
    EXPECT_EQ(frame(f, get + "GET /next HTTP/1.1\r\n\r\n"), get.size());
    EXPECT_TRUE(f.done());
    EXPECT_TRUE(f.keep_alive());
}

TEST(HttpFraming, ContentLengthBodiesEndExactlyThereWhateverThePieces) {
    const std::string post = "POST /x HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello world";
    for (size_t step : {size_t{1}, size_t{3}, size_t{7}, size_t{1000}}) {
        HttpFraming f(Kind::kRequest);
        EXPECT_EQ(frame(f, post + "GET / HTTP/1.1\r\n\r\n", step), post.size()) << step;
        EXPECT_TRUE(f.done()) << step;
    }
}

TEST(HttpFraming, ChunkedBodiesWithExtensionsAndTrailers) {
    const std::string response =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        "5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n";
    for (size_t step : {size_t{1}, size_t{2}, size_t{5}, size_t{1000}}) {
        HttpFraming f(Kind::kResponse);
        EXPECT_EQ(frame(f, response + "HTTP/1.1 200 OK\r\n", step), response.size()) << step;
        EXPECT_TRUE(f.done()) << step;
        EXPECT_EQ(f.status(), 200);
    }
}

TEST(HttpFraming, ResponsesWithoutBodies) {
    for (const char* head :
         {"HTTP/1.1 204 No Content\r\n\r\n", "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
          "HTTP/1.1 100 Continue\r\n\r\n"}) {
        HttpFraming f(Kind::kResponse);
        EXPECT_EQ(frame(f, std::string(head) + "rest"), std::string(head).size()) << head;
        EXPECT_TRUE(f.done()) << head;
    }
    HttpFraming to_head(Kind::kResponse, /*response_to_head=*/true);
    const std::string head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n";
    EXPECT_EQ(frame(to_head, head), head.size());
    EXPECT_TRUE(to_head.done());
}

TEST(HttpFraming, AResponseWithoutLengthEndsWithTheConnection) {
    HttpFraming f(Kind::kResponse);
    EXPECT_EQ(frame(f, "HTTP/1.1 200 OK\r\n\r\nall of this"), 30u);
    EXPECT_FALSE(f.done());
    f.end_of_stream();
    EXPECT_TRUE(f.done());
    EXPECT_FALSE(f.keep_alive());
}

TEST(HttpFraming, KeepAliveFollowsTheVersionAndTheConnectionHeader) {
    auto keep = [](const std::string& head) {
        HttpFraming f(Kind::kRequest);
        frame(f, head);
        EXPECT_TRUE(f.done()) << head;
        return f.keep_alive();
    };
    EXPECT_TRUE(keep("GET / HTTP/1.1\r\n\r\n"));
    EXPECT_FALSE(keep("GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
    EXPECT_FALSE(keep("GET / HTTP/1.0\r\n\r\n"));
    EXPECT_TRUE(keep("GET / HTTP/1.0\r\nconnection: Keep-Alive\r\n\r\n"));
}

TEST(HttpFraming, MalformedOrAmbiguousHeadsAreRefused) {
    for (const char* head : {
             "GET /\r\n\r\n",                                                               // no version
             "GET / SPDY/3\r\n\r\n",                                                        // not HTTP/1.x
             "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",                               // a sign
             "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",                               // junk
             "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",           // two lengths
             "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",  // smuggling
             "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",                          // cannot be framed
             "GET / HTTP/1.1\r\nno colon here\r\n\r\n",
         }) {
        HttpFraming f(Kind::kRequest);
        frame(f, head);
        EXPECT_TRUE(f.failed()) << head;
    }
    HttpFraming bad_chunk(Kind::kResponse);
    frame(bad_chunk, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    EXPECT_TRUE(bad_chunk.failed());
    HttpFraming huge(Kind::kRequest);
    frame(huge, "GET / HTTP/1.1\r\nX: " + std::string(HttpFraming::kMaxHead, 'a') + "\r\n\r\n");
    EXPECT_TRUE(huge.failed());
}

}  // namespace
