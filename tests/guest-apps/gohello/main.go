// A Go program exercising what the Go runtime asks of a kernel: threads (goroutines on several
// Ms), futexes, timers (the netpoller's epoll), signals for preemption, and a channel pipeline.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"time"
)

func spin(d time.Duration) int {
	// A tight loop with no function calls: only asynchronous preemption (a signal) stops it.
	n := 0
	for start := time.Now(); time.Since(start) < d; n++ {
	}
	return n
}

func main() {
	runtime.GOMAXPROCS(4)
	var wg sync.WaitGroup
	results := make(chan int, 8)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			time.Sleep(time.Duration(i) * time.Millisecond)
			results <- i * i
		}(i)
	}
	wg.Wait()
	close(results)
	sum := 0
	for r := range results {
		sum += r
	}

	done := make(chan bool)
	go func() { spin(50 * time.Millisecond); done <- true }()
	start := time.Now()
	time.Sleep(10 * time.Millisecond)
	slept := time.Since(start)
	<-done

	if len(os.Args) > 1 {
		fmt.Println("args:", os.Args[1:])
	}
	fmt.Printf("go: sum=%d sleep=%dms goroutines ok\n", sum, slept.Milliseconds())
	if sum != 140 {
		os.Exit(1)
	}
}
