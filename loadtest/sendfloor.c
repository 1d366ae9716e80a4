/*
 * loadtest/sendfloor.c: the kernel's own cost of the SFU's sends, with nothing else around it.
 * Built on first use by loadtest/sendfloor.py (cc -O2) into ~/.cache/classroom/.
 *
 *   sendfloor recv N            bind N UDP sockets on 127.0.0.1, print their ports (one line),
 *                               then read and drop everything (recvmmsg) until killed
 *   sendfloor send MODE BATCH SIZE RATE SECONDS PORT...
 *                               every 1/RATE s, one "incoming packet": a copy of SIZE bytes to
 *                               every PORT (a fresh 12-byte RTP-like header per copy, as the
 *                               fan-out loop writes); MODE is
 *                                 sendmmsg  one unconnected socket, BATCH copies per sendmmsg
 *                                           (the SFU on its shared media port)
 *                                 send      a connected socket per port, one send() per copy
 *                                           (the SFU with media.udp_mux: false)
 *                                 sendto    one unconnected socket, one sendto() per copy
 *                               prints one JSON object: datagrams, syscalls, refused, cpu_s, wall_s
 *
 * No SRTP and no Python: what is measured is the copy into the kernel, the kernel's send path
 * and (on loopback) the receiver's kernel path, which the kernel bills to the sender.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BATCH 1024
#define MAX_SIZE 1500

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double cpu_s(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec * 1e-6;
}

static int receive(int n) {
    int ep = epoll_create1(0);
    int *fds = calloc((size_t)n, sizeof(int));
    for (int i = 0; i < n; i++) {
        fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        int buf = 1 << 20;
        setsockopt(fds[i], SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
        if (bind(fds[i], (struct sockaddr *)&a, sizeof(a)) != 0) {
            perror("bind");
            return 1;
        }
        socklen_t len = sizeof(a);
        getsockname(fds[i], (struct sockaddr *)&a, &len);
        printf("%s%d", i ? " " : "", ntohs(a.sin_port));
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = fds[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
    }
    printf("\n");
    fflush(stdout);
    static unsigned char bufs[64][MAX_SIZE];
    struct mmsghdr msgs[64];
    struct iovec iov[64];
    for (;;) {
        struct epoll_event evs[64];
        int k = epoll_wait(ep, evs, 64, 1000);
        for (int e = 0; e < k; e++) {
            for (;;) {
                for (int j = 0; j < 64; j++) {
                    iov[j].iov_base = bufs[j];
                    iov[j].iov_len = MAX_SIZE;
                    memset(&msgs[j].msg_hdr, 0, sizeof(struct msghdr));
                    msgs[j].msg_hdr.msg_iov = &iov[j];
                    msgs[j].msg_hdr.msg_iovlen = 1;
                }
                if (recvmmsg(evs[e].data.fd, msgs, 64, MSG_DONTWAIT, NULL) <= 0) {
                    break;
                }
            }
        }
    }
}

static int transmit(const char *mode, int batch, int size, double rate, double seconds, int n, int *ports) {
    if (batch < 1 || batch > MAX_BATCH || size < 12 || size > MAX_SIZE || n < 1) {
        fprintf(stderr, "sendfloor: bad arguments\n");
        return 2;
    }
    int by_mmsg = strcmp(mode, "sendmmsg") == 0, by_send = strcmp(mode, "send") == 0;
    if (!by_mmsg && !by_send && strcmp(mode, "sendto") != 0) {
        fprintf(stderr, "sendfloor: MODE is sendmmsg, send or sendto\n");
        return 2;
    }
    struct sockaddr_in *addrs = calloc((size_t)n, sizeof(*addrs));
    int *fds = calloc((size_t)n, sizeof(int));
    int shared = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    int big = 4 << 20;
    setsockopt(shared, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
    for (int i = 0; i < n; i++) {
        addrs[i].sin_family = AF_INET;
        addrs[i].sin_port = htons((unsigned short)ports[i]);
        addrs[i].sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fds[i] = shared;
        if (by_send) { /* a socket of its own, connected to its subscriber */
            fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
            if (connect(fds[i], (struct sockaddr *)&addrs[i], sizeof(addrs[i])) != 0) {
                perror("connect");
                return 1;
            }
        }
    }
    static unsigned char payload[MAX_SIZE];
    for (int i = 0; i < MAX_SIZE; i++) {
        payload[i] = (unsigned char)(i * 7);
    }
    static unsigned char bufs[MAX_BATCH][MAX_SIZE];
    static struct mmsghdr msgs[MAX_BATCH];
    static struct iovec iov[MAX_BATCH];
    unsigned long long datagrams = 0, syscalls = 0, refused = 0;
    unsigned int seq = 0;
    double period = 1.0 / rate, start = now_s(), cpu0 = cpu_s(), next = start;
    double end = start + seconds;
    while (next < end) {
        double t = now_s();
        if (t < next) {
            struct timespec d = {0, (long)((next - t) * 1e9)};
            nanosleep(&d, NULL);
            continue;
        }
        next += period;
        seq++;
        int queued = 0;
        for (int i = 0; i < n; i++) {
            /* one copy: the payload plus a header of its own (as the fan-out loop builds it) */
            unsigned char *b = by_mmsg ? bufs[queued] : bufs[0];
            memcpy(b, payload, (size_t)size);
            b[0] = 0x80;
            b[2] = (unsigned char)(seq >> 8);
            b[3] = (unsigned char)seq;
            b[8] = (unsigned char)(i >> 8);
            b[9] = (unsigned char)i;
            if (!by_mmsg) {
                ssize_t w = by_send ? send(fds[i], b, (size_t)size, MSG_DONTWAIT)
                                    : sendto(shared, b, (size_t)size, MSG_DONTWAIT,
                                             (struct sockaddr *)&addrs[i], sizeof(addrs[i]));
                syscalls++;
                if (w < 0) {
                    refused++;
                } else {
                    datagrams++;
                }
                continue;
            }
            iov[queued].iov_base = b;
            iov[queued].iov_len = (size_t)size;
            memset(&msgs[queued].msg_hdr, 0, sizeof(struct msghdr));
            msgs[queued].msg_hdr.msg_name = &addrs[i];
            msgs[queued].msg_hdr.msg_namelen = sizeof(addrs[i]);
            msgs[queued].msg_hdr.msg_iov = &iov[queued];
            msgs[queued].msg_hdr.msg_iovlen = 1;
            queued++;
            if (queued == batch || i == n - 1) {
                int k = 0;
                while (k < queued) {
                    int r = sendmmsg(shared, &msgs[k], (unsigned int)(queued - k), MSG_DONTWAIT);
                    syscalls++;
                    if (r > 0) {
                        datagrams += (unsigned long long)r;
                        k += r;
                    } else {
                        refused++;
                        k++;
                    }
                }
                queued = 0;
            }
        }
    }
    double cpu = cpu_s() - cpu0, wall = now_s() - start;
    printf("{\"mode\": \"%s\", \"batch\": %d, \"size\": %d, \"destinations\": %d, \"datagrams\": %llu, "
           "\"syscalls\": %llu, \"refused\": %llu, \"cpu_s\": %.6f, \"wall_s\": %.3f}\n",
           mode, by_mmsg ? batch : 1, size, n, datagrams, syscalls, refused, cpu, wall);
    return 0;
}

int main(int argc, char **argv) {
    if (argc == 3 && strcmp(argv[1], "recv") == 0) {
        return receive(atoi(argv[2]));
    }
    if (argc >= 8 && strcmp(argv[1], "send") == 0) {
        int n = argc - 7;
        int *ports = calloc((size_t)n, sizeof(int));
        for (int i = 0; i < n; i++) {
            ports[i] = atoi(argv[7 + i]);
        }
        return transmit(argv[2], atoi(argv[3]), atoi(argv[4]), atof(argv[5]), atof(argv[6]), n, ports);
    }
    fprintf(stderr, "usage: sendfloor recv N | sendfloor send MODE BATCH SIZE RATE SECONDS PORT...\n");
    return 2;
}
