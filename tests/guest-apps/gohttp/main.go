// An unmodified Go net/http server: the Go runtime's threads, futexes, epoll and signals, and
// the standard library's HTTP/1.1 stack, on the Kiln kernel.
package main

import (
	"fmt"
	"net/http"
	"os"
)

func main() {
	port := "8080"
	if len(os.Args) > 1 {
		port = os.Args[1]
	}
	http.HandleFunc("/hello", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from go on kiln\n")
	})
	http.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintf(w, "%s %s\n", r.Method, r.URL.Query().Get("q"))
	})
	fmt.Println("gohttp: listening on", port)
	if err := http.ListenAndServe(":"+port, nil); err != nil {
		fmt.Println("gohttp:", err)
		os.Exit(1)
	}
}
