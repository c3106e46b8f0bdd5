// SSE and AVX state survives thread switches, system calls and interrupts: threads keep values
// in vector registers while others run and the timer preempts them.
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

// AVX where the CPU has it (the guest's CPUID says), SSE everywhere.
__attribute__((target("avx"))) static void* work_avx(void* arg) {
    const double seed = (double)(long)arg;
    __m256d acc = _mm256_set1_pd(seed);
    const __m256d one = _mm256_set1_pd(1.0);
    __m128 s = _mm_set1_ps((float)seed);
    for (int i = 0; i < 2000000; ++i) {
        acc = _mm256_add_pd(acc, one);
        s = _mm_add_ps(s, _mm_set1_ps(0.5f));
        if (i % 100000 == 0) getppid();  // a system call with vector state live
    }
    double out[4];
    float f[4];
    _mm256_storeu_pd(out, acc);
    _mm_storeu_ps(f, s);
    const int ok = out[0] == seed + 2000000 && out[3] == seed + 2000000 && f[0] == (float)seed + 1000000.0f;
    return (void*)(long)ok;
}

static void* work_sse(void* arg) {
    const float seed = (float)(long)arg;
    __m128 s = _mm_set1_ps(seed);
    __m128d d = _mm_set1_pd(seed);
    for (int i = 0; i < 2000000; ++i) {
        s = _mm_add_ps(s, _mm_set1_ps(0.5f));
        d = _mm_add_pd(d, _mm_set1_pd(1.0));
        if (i % 100000 == 0) getppid();
    }
    float f[4];
    double g[2];
    _mm_storeu_ps(f, s);
    _mm_storeu_pd(g, d);
    return (void*)(long)(f[3] == seed + 1000000.0f && g[1] == seed + 2000000.0);
}

int main(void) {
    const int avx = __builtin_cpu_supports("avx");
    pthread_t t[4];
    for (long i = 0; i < 4; ++i) pthread_create(&t[i], NULL, avx ? work_avx : work_sse, (void*)(i * 1000));
    int all = 1;
    for (int i = 0; i < 4; ++i) {
        void* r;
        pthread_join(t[i], &r);
        all &= (int)(long)r;
    }
    printf("vector_math: %s (%s)\n", all ? "ok" : "FAILED", avx ? "avx" : "sse");
    return all ? 0 : 1;
}
