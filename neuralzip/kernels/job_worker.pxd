# A background thread that runs a kernel's jobs in the order they are posted, so one core can
# learn while the calling thread goes on (the classic image model's least-squares fits,
# classic_image.pyx). Written in C, not with OpenMP: a parallel region ends with the call that
# opened it, and this thread lives as long as the chunk it serves.
#
# A job is a small integer id (< NZ_WORKER_JOBS) the caller gives meaning to; fn(ctx, id) runs
# it. post(id) first waits for the id's previous run, wait(id) returns once the id's last posted
# run has finished. Only the calling thread posts and waits; fn touches no Python object. What a
# job computes never depends on when it runs, so results are the same with or without the
# thread. Where threads are not available (Windows builds here) new() returns NULL and the caller
# runs its jobs itself.

cdef extern from *:
    """
    #define NZ_WORKER_JOBS 8
    typedef void (*nz_job_fn)(void* ctx, int job);
    #if defined(_WIN32)
    typedef struct nz_worker nz_worker;
    static inline nz_worker* nz_worker_new(nz_job_fn fn, void* ctx) { (void)fn; (void)ctx; return NULL; }
    static inline void nz_worker_post(nz_worker* w, int job) { (void)w; (void)job; }
    static inline void nz_worker_wait(nz_worker* w, int job) { (void)w; (void)job; }
    static inline void nz_worker_free(nz_worker* w) { (void)w; }
    #else
    #include <pthread.h>
    #include <stdlib.h>
    typedef struct nz_worker {
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t posted, finished;
        nz_job_fn fn;
        void* ctx;
        int queue[NZ_WORKER_JOBS];    /* posted and not started, oldest at head */
        int head, count;
        int pending[NZ_WORKER_JOBS];  /* per id: posted and not finished */
        int stop;
    } nz_worker;

    static inline void* nz_worker_main(void* arg) {
        nz_worker* w = (nz_worker*)arg;
        pthread_mutex_lock(&w->mu);
        for (;;) {
            while (w->count == 0 && !w->stop) pthread_cond_wait(&w->posted, &w->mu);
            if (w->count == 0) break;  /* asked to stop, and every posted job has run */
            int job = w->queue[w->head];
            w->head = (w->head + 1) % NZ_WORKER_JOBS;
            w->count--;
            pthread_mutex_unlock(&w->mu);
            w->fn(w->ctx, job);
            pthread_mutex_lock(&w->mu);
            w->pending[job] = 0;
            pthread_cond_broadcast(&w->finished);
        }
        pthread_mutex_unlock(&w->mu);
        return NULL;
    }

    static inline nz_worker* nz_worker_new(nz_job_fn fn, void* ctx) {
        nz_worker* w = (nz_worker*)calloc(1, sizeof(nz_worker));
        if (w == NULL) return NULL;
        w->fn = fn;
        w->ctx = ctx;
        if (pthread_mutex_init(&w->mu, NULL) != 0) { free(w); return NULL; }
        if (pthread_cond_init(&w->posted, NULL) != 0) {
            pthread_mutex_destroy(&w->mu); free(w); return NULL;
        }
        if (pthread_cond_init(&w->finished, NULL) != 0) {
            pthread_cond_destroy(&w->posted); pthread_mutex_destroy(&w->mu); free(w); return NULL;
        }
        if (pthread_create(&w->thread, NULL, nz_worker_main, w) != 0) {
            pthread_cond_destroy(&w->finished); pthread_cond_destroy(&w->posted);
            pthread_mutex_destroy(&w->mu); free(w); return NULL;
        }
        return w;
    }

    static inline void nz_worker_wait(nz_worker* w, int job) {
        pthread_mutex_lock(&w->mu);
        while (w->pending[job]) pthread_cond_wait(&w->finished, &w->mu);
        pthread_mutex_unlock(&w->mu);
    }

    static inline void nz_worker_post(nz_worker* w, int job) {
        pthread_mutex_lock(&w->mu);
        while (w->pending[job]) pthread_cond_wait(&w->finished, &w->mu);
        w->pending[job] = 1;
        w->queue[(w->head + w->count) % NZ_WORKER_JOBS] = job;
        w->count++;
        pthread_cond_signal(&w->posted);
        pthread_mutex_unlock(&w->mu);
    }

    /* runs what is still posted, then ends the thread and frees the worker (NULL: nothing) */
    static inline void nz_worker_free(nz_worker* w) {
        if (w == NULL) return;
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_signal(&w->posted);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
        pthread_cond_destroy(&w->finished);
        pthread_cond_destroy(&w->posted);
        pthread_mutex_destroy(&w->mu);
        free(w);
    }
    #endif
    """
    enum: NZ_WORKER_JOBS
    ctypedef void (*nz_job_fn)(void* ctx, int job) noexcept nogil
    ctypedef struct nz_worker:
        pass
    nz_worker* nz_worker_new(nz_job_fn fn, void* ctx) nogil
    void nz_worker_post(nz_worker* w, int job) nogil
    void nz_worker_wait(nz_worker* w, int job) nogil
    void nz_worker_free(nz_worker* w) nogil
