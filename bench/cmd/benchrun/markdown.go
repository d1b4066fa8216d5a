package main

import (
	"fmt"
	"math"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/linkerd-inject-policy/linkerd-inject-policy/bench"
)

// server returns the result of the server with role (nil: not measured).
func (r report) server(role string) *serverResult {
	for i := range r.Servers {
		if r.Servers[i].Role == role {
			return &r.Servers[i]
		}
	}
	return nil
}

// run returns the load run of the server with role at concurrency c.
func (r report) run(role string, c int) *loadRun {
	s := r.server(role)
	if s == nil {
		return nil
	}
	for i := range s.Runs {
		if s.Runs[i].Concurrency == c {
			return &s.Runs[i]
		}
	}
	return nil
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return math.NaN()
	}
	return float64(a) / float64(b)
}

func div(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}

func x(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f", f)
}

func us(d time.Duration) string { return fmt.Sprintf("%.1f µs", float64(d)/1e3) }

// podMedian is the median time of a Pod-creation set-up over its rounds,
// with its range and the webhook's median CPU per admission.
type podMedian struct {
	Variant       string
	Elapsed       time.Duration
	Min, Max      time.Duration
	CPUPerPod     time.Duration
	Pods, Patched int
	Errors        int
	Rounds        int
}

func (r report) podMedians() []podMedian {
	var order []string
	by := map[string][]podRun{}
	for _, run := range r.Pods {
		if run.Err != "" {
			continue
		}
		if _, ok := by[run.Variant]; !ok {
			order = append(order, run.Variant)
		}
		by[run.Variant] = append(by[run.Variant], run)
	}
	var out []podMedian
	for _, v := range order {
		runs := by[v]
		var el, cpu []float64
		m := podMedian{Variant: v, Rounds: len(runs)}
		for _, run := range runs {
			el = append(el, float64(run.Elapsed))
			if run.Pods > 0 {
				cpu = append(cpu, float64(run.CPU)/float64(run.Pods))
			}
			m.Pods += run.Pods
			m.Patched += run.Patched
			m.Errors += run.Errors
		}
		m.Elapsed = time.Duration(median(el))
		m.Min, m.Max = time.Duration(slices.Min(el)), time.Duration(slices.Max(el))
		m.CPUPerPod = time.Duration(median(cpu))
		out = append(out, m)
	}
	return out
}

func findPod(ms []podMedian, prefix string) *podMedian {
	for i := range ms {
		if strings.HasPrefix(ms[i].Variant, prefix) {
			return &ms[i]
		}
	}
	return nil
}

// fitExponent is the slope of the least-squares line through
// (log size, log ns): time grows as size^exponent.
func fitExponent(sizes, ns []float64) float64 {
	n := float64(len(sizes))
	if len(sizes) < 2 {
		return math.NaN()
	}
	var sx, sy, sxx, sxy float64
	for i := range sizes {
		lx, ly := math.Log(sizes[i]), math.Log(ns[i])
		sx, sy, sxx, sxy = sx+lx, sy+ly, sxx+lx*lx, sxy+lx*ly
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return math.NaN()
	}
	return (n*sxy - sx*sy) / d
}

// growth is one family's fitted exponent through one path.
type growth struct {
	Family   bench.Family
	Path     string // "Evaluate" or "Handler"
	Sizes    []float64
	NsOp     []float64
	Allocs   []float64
	Exponent float64
	// Last is the exponent between the two largest sizes alone.
	Last float64
}

func (r report) growths() []growth {
	var out []growth
	for _, path := range []string{"Evaluate", "Handler"} {
		for _, f := range bench.Families() {
			g := growth{Family: f, Path: path}
			for _, n := range f.Sizes {
				b := find(r.GoBench, fmt.Sprintf("Growth%s/%s/n=%d", path, f.Name, n))
				if b == nil || len(b.NsOp) == 0 {
					continue
				}
				g.Sizes = append(g.Sizes, float64(n))
				g.NsOp = append(g.NsOp, median(b.NsOp))
				g.Allocs = append(g.Allocs, median(b.Allocs))
			}
			if len(g.Sizes) < 2 {
				continue
			}
			g.Exponent = fitExponent(g.Sizes, g.NsOp)
			k := len(g.Sizes)
			g.Last = fitExponent(g.Sizes[k-2:], g.NsOp[k-2:])
			out = append(out, g)
		}
	}
	return out
}

// memoryFit is the least-squares line of the largest Pod's peak RSS over
// concurrency for one server: peak ≈ Base + PerRequest × c.
type memoryFit struct {
	Base, PerRequest float64 // bytes
	Max              largestRun
}

func (r report) largestFit(role string) (memoryFit, bool) {
	var cs, peaks []float64
	var f memoryFit
	for _, run := range r.Largest {
		if run.Role != role {
			continue
		}
		cs = append(cs, float64(run.Concurrency))
		peaks = append(peaks, float64(run.After.HWM))
		if run.After.HWM >= f.Max.After.HWM {
			f.Max = run
		}
	}
	if len(cs) == 0 {
		return f, false
	}
	if len(cs) == 1 {
		f.Base = peaks[0]
		return f, true
	}
	n := float64(len(cs))
	var sx, sy, sxx, sxy float64
	for i := range cs {
		sx, sy, sxx, sxy = sx+cs[i], sy+peaks[i], sxx+cs[i]*cs[i], sxy+cs[i]*peaks[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		f.Base = sy / n
		return f, true
	}
	f.PerRequest = (n*sxy - sx*sy) / d
	f.Base = (sy - f.PerRequest*sx) / n
	return f, true
}

func (r report) markdown() string {
	var w strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&w, format, a...) }
	p("Measured %s on %s with %s", r.When.Format("2006-01-02 15:04 UTC"), r.Machine, runtime.Version())
	if r.Commit != "" {
		p(", commit `%s`", r.Commit)
	}
	if s := r.server(roleOurs); s != nil {
		p(", serving with `%s` (%.1f MB)", filepath.Base(s.Binary), float64(s.Size)/1e6)
	}
	p(". The load generator, the servers and the control plane share the same cores.\n\n")
	r.targets(p)
	r.bounded(p)
	r.goBenchmarks(p)
	r.load(p)
	r.largest(p)
	r.hostile(p)
	r.pods(p)
	r.profiles(p)
	r.peers(p)
	return w.String()
}

type printer func(format string, a ...any)

func (r report) targets(p printer) {
	p("### Targets (issue #15)\n\nEach figure is a ratio to a baseline measured in this run, or a bound; met or missed is computed from the numbers below.\n\n")
	p("| target | measured | baseline (this run) | ratio | |\n|---|---|---|---:|---|\n")
	if h, e := find(r.GoBench, "Handler/Deployment"), find(r.GoBench, "EvaluatePatch/Deployment"); h != nil && e != nil {
		rt := div(median(h.NsOp), median(e.NsOp))
		p("| `Handler/Deployment` ≤ %.0f × `EvaluatePatch/Deployment` | %s, %.0f allocs | %s, %.0f allocs | %s | %s |\n", targetHandlerOverPatch,
			nsString(median(h.NsOp)), median(h.Allocs), nsString(median(e.NsOp)), median(e.Allocs), x(rt), met(rt <= targetHandlerOverPatch))
	}
	if ours, noop := r.run(roleOurs, targetConcurrency), r.run(roleNoop, targetConcurrency); ours != nil && noop != nil {
		rt := div(ours.RPS(), noop.RPS())
		p("| HTTPS at %d clients: req/s ≥ %.1f × the no-op webhook's | %.0f req/s | %.0f req/s | %s | %s |\n", targetConcurrency, targetRPSRatio, ours.RPS(), noop.RPS(), x(rt), met(rt >= targetRPSRatio))
		rt = ratio(ours.Percentile(0.5), noop.Percentile(0.5))
		p("| HTTPS at %d clients: p50 ≤ %.2f × the no-op webhook's | %s | %s | %s | %s |\n", targetConcurrency, targetP50Ratio, ms(ours.Percentile(0.5)), ms(noop.Percentile(0.5)), x(rt), met(rt <= targetP50Ratio))
	}
	if s, noop := r.server(roleOurs), r.server(roleNoop); s != nil {
		base := "–"
		if noop != nil {
			base = "no-op " + mib(noop.IdleRSS.RSS)
		}
		p("| RSS idle ≤ %s | %s | %s | | %s |\n", mib(targetIdleRSS), mib(s.IdleRSS.RSS), base, met(s.IdleRSS.RSS <= targetIdleRSS))
		peakAt := 0
		for _, lr := range s.Runs {
			peakAt = max(peakAt, lr.Concurrency)
		}
		if noop != nil {
			base = "no-op " + mib(noop.AfterLoad.HWM)
		}
		what := fmt.Sprintf("peak RSS ≤ %s under %d clients", mib(targetPeakRSS), targetPeakConcurrency)
		if peakAt < targetPeakConcurrency {
			what += fmt.Sprintf(" (measured up to %d only)", peakAt)
		}
		p("| %s | %s | %s | | %s |\n", what, mib(s.AfterLoad.HWM), base, met(s.AfterLoad.HWM <= targetPeakRSS && peakAt >= targetPeakConcurrency))
	}
	pm := r.podMedians()
	none, patching, ours, kyverno := findPod(pm, "no webhook"), findPod(pm, "patching no-op"), findPod(pm, "linkerd-inject-policy"), findPod(pm, "Kyverno")
	if ours != nil && patching != nil {
		rt := ratio(ours.Elapsed, patching.Elapsed)
		p("| Pods through the real apiserver: time ≤ %.1f × the patching no-op's (median of %d rounds) | %s | %s | %s | %s |\n", targetPodsRatio, ours.Rounds,
			msString(ours.Elapsed), msString(patching.Elapsed), x(rt), met(rt <= targetPodsRatio))
	}
	if ours != nil && none != nil {
		oo := ours.Elapsed - none.Elapsed
		if kyverno != nil {
			ko := kyverno.Elapsed - none.Elapsed
			rt := ratio(oo, ko)
			if ko <= 0 {
				rt = math.NaN()
			}
			p("| Pods: our overhead over no webhook ≤ %.1f × Kyverno's | %s | Kyverno %s | %s | %s |\n", targetKyvernoOverhead, msString(oo), msString(ko), x(rt), met(rt <= targetKyvernoOverhead))
		} else {
			note := r.KyvernoNote
			for _, run := range r.Pods {
				if run.Err != "" {
					first, _, _ := strings.Cut(run.Err, "\n")
					note = "could not run: " + first
				}
			}
			p("| Pods: our overhead over no webhook ≤ %.1f × Kyverno's | %s | Kyverno %s | | not measured |\n", targetKyvernoOverhead, msString(oo), note)
		}
	}
}

func msString(d time.Duration) string {
	if d < 0 {
		return "−" + ms(-d)
	}
	return ms(d)
}

func (r report) bounded(p printer) {
	gs := r.growths()
	fit, haveFit := r.largestFit(roleOurs)
	if len(gs) == 0 && !haveFit && len(r.Hostile) == 0 && r.Stall == nil {
		return
	}
	p("\n### Bounded time and memory (issue #17)\n\n")
	r.targets17(p, gs)
	if len(gs) > 0 {
		p("Growth of time with the size of one part of the object (`BenchmarkGrowthEvaluate`: `policy.Evaluate` on the decoded object; `BenchmarkGrowthHandler`: the whole `/mutate` handler). The exponent is the slope of the least-squares line through (log size, log ns/op) over all sizes (1 is linear, 2 quadratic); \"last step\" is the slope between the two largest sizes alone, where fixed costs weigh least (and noise most). A fitted exponent up to %.1f reads as linear.\n\n", linearExponent)
		p("| family (what grows) | path | sizes | ns/op at the largest | allocs/op at the largest | exponent | last step | |\n|---|---|---|---:|---:|---:|---:|---|\n")
		for _, g := range gs {
			var sizes []string
			for _, n := range g.Sizes {
				sizes = append(sizes, strconv.Itoa(int(n)))
			}
			k := len(g.Sizes) - 1
			verdict := "linear"
			if g.Exponent > linearExponent {
				verdict = "**super-linear**"
			}
			p("| %s: %s | %s | %s | %s | %.0f | %.2f | %.2f | %s |\n", g.Family.Name, g.Family.Dimension, g.Path, strings.Join(sizes, ", "),
				nsString(g.NsOp[k]), g.Allocs[k], g.Exponent, g.Last, verdict)
		}
	}
	if haveFit {
		p("\nThe largest admissible Pod (%d KiB of AdmissionReview, %s) sent by concurrent clients to a fresh `serve` each time (table below): peak RSS ≈ %s + %s per concurrent request (least squares over %d levels); at %d concurrent it peaked at %s.\n",
			fit.Max.Bytes>>10, "one container with 100,000-odd env entries", mib(uint64(max(0, fit.Base))), mib(uint64(max(0, fit.PerRequest))), len(r.levelsOf(roleOurs)), fit.Max.Concurrency, mib(fit.Max.After.HWM))
	}
}

func (r report) levelsOf(role string) []int {
	var out []int
	for _, run := range r.Largest {
		if run.Role == role {
			out = append(out, run.Concurrency)
		}
	}
	return out
}

func (r report) goBenchmarks(p printer) {
	var plain []*goBench
	for _, b := range r.GoBench {
		if !strings.HasPrefix(b.Name, "Growth") {
			plain = append(plain, b)
		}
	}
	if len(plain) == 0 {
		return
	}
	runs := len(plain[0].NsOp)
	p("\n### Go benchmarks\n\nMedian of %d runs (`-count=%d -benchmem`; ± is half the min–max range). `Evaluate`: the policy engine on a decoded object. `EvaluatePatch`: plus the JSON patch as the handler computes it (`policy.Diff` of the request object and the copy-on-write result). `EvaluateRawPatch`: the previous way, for comparison (encode the mutated object and diff it with the raw request bytes). `Handler`: the whole `/mutate` handler without the network (decode the AdmissionReview, evaluate, patch, encode the answer). `NoopHandler`: the no-op webhook's handler (controller-runtime's `admission.Webhook` answering allowed); `PatchingNoopHandler`: the same answering with our patch, precomputed.\n\n", runs, runs)
	p("| benchmark | time/op | B/op | allocs/op |\n|---|---:|---:|---:|\n")
	for _, b := range plain {
		p("| %s | %s ± %.0f%% | %.0f | %.0f |\n", b.Name, nsString(median(b.NsOp)), spread(b.NsOp), median(b.BOp), median(b.Allocs))
	}
	p("\nThe handler against its baselines, per object: time and allocations as ratios to `EvaluatePatch` (the policy and its patch, the floor of our own work) and to `PatchingNoopHandler` (the framework decoding a review and encoding the same answer).\n\n")
	p("| object | Handler | × EvaluatePatch (time) | × EvaluatePatch (allocs) | × PatchingNoopHandler (time) | × PatchingNoopHandler (allocs) | × NoopHandler (time) |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, o := range bench.Objects() {
		h := find(plain, "Handler/"+o.Name)
		if h == nil {
			continue
		}
		cell := func(base string, allocs bool) string {
			b := find(plain, base+"/"+o.Name)
			if b == nil {
				return "–"
			}
			if allocs {
				return x(div(median(h.Allocs), median(b.Allocs)))
			}
			return x(div(median(h.NsOp), median(b.NsOp)))
		}
		p("| %s | %s, %.0f allocs | %s | %s | %s | %s | %s |\n", o.Name, nsString(median(h.NsOp)), median(h.Allocs),
			cell("EvaluatePatch", false), cell("EvaluatePatch", true), cell("PatchingNoopHandler", false), cell("PatchingNoopHandler", true), cell("NoopHandler", false))
	}
	if len(r.Before) > 0 {
		p("\nBefore and after: the same benchmarks at the baseline commit `%s` (run in this `make bench`, same machine, same minutes).\n\n", r.Baseline)
		p("| benchmark | before | after | after / before (time) | allocs before | allocs after |\n|---|---:|---:|---:|---:|---:|\n")
		for _, b := range r.Before {
			a := find(plain, b.Name)
			if a == nil {
				continue
			}
			p("| %s | %s | %s | %s | %.0f | %.0f |\n", b.Name, nsString(median(b.NsOp)), nsString(median(a.NsOp)), x(div(median(a.NsOp), median(b.NsOp))), median(b.Allocs), median(a.Allocs))
		}
	}
}

func (r report) load(p printer) {
	if len(r.Servers) == 0 {
		return
	}
	p("\n### HTTPS load on loopback\n\nThe same AdmissionReview (a Deployment that gets a patch) POSTed over keep-alive HTTP/1.1 connections, one per client, after 5 warm-up requests per client. All servers run at once and the levels alternate between them, so background load on the machine hits them alike. CPU/request is the server process's user + system time over the measured requests (`/proc/<pid>/stat`, 10 ms ticks) divided by their number: it counts TLS, HTTP, JSON, policy, logging and garbage collection, and none of the load generator.\n\n")
	p("| server | clients | requests | errors | req/s | p50 | p99 | p99.9 | CPU/request |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Servers {
		for _, lr := range s.Runs {
			trunc := ""
			if lr.Truncated {
				trunc = " (cut by time limit)"
			}
			p("| %s | %d | %d%s | %d | %.0f | %s | %s | %s | %s |\n", s.Name, lr.Concurrency, lr.Requests, trunc, lr.Errors, lr.RPS(),
				ms(lr.Percentile(0.5)), ms(lr.Percentile(0.99)), ms(lr.Percentile(0.999)), us(lr.CPUPerRequest()))
		}
	}
	p("\n| server | clients | req/s / no-op | p50 / no-op | p99 / no-op | CPU/request / no-op | req/s / patching no-op | p50 / patching no-op | CPU/request / patching no-op |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Servers {
		if s.Role == roleNoop {
			continue
		}
		for _, lr := range s.Runs {
			noop, pn := r.run(roleNoop, lr.Concurrency), r.run(rolePatching, lr.Concurrency)
			cells := func(b *loadRun) string {
				if b == nil {
					return "– | – | –"
				}
				return fmt.Sprintf("%s | %s | %s", x(div(lr.RPS(), b.RPS())), x(ratio(lr.Percentile(0.5), b.Percentile(0.5))), x(ratio(lr.CPUPerRequest(), b.CPUPerRequest())))
			}
			p99 := "–"
			if noop != nil {
				p99 = x(ratio(lr.Percentile(0.99), noop.Percentile(0.99)))
			}
			c1 := cells(noop)
			a, rest, _ := strings.Cut(c1, " | ")
			b, c, _ := strings.Cut(rest, " | ")
			p("| %s | %d | %s | %s | %s | %s | %s |\n", s.Name, lr.Concurrency, a, b, p99, c, cells(pn))
		}
	}
	p("\n### Memory and start-up\n\nResident memory from `/proc/<pid>/status` (VmRSS, VmHWM for the peak, which comes from the last and largest load level); start-up is fork to the first `200` from `/readyz`, polled every 2 ms, without a cluster connection.\n\n")
	p("| server | binary | start → ready (median, min–max of %d) | RSS idle | RSS after the load | peak RSS |\n|---|---:|---:|---:|---:|---:|\n", len(r.Servers[0].Startup))
	for _, s := range r.Servers {
		if len(s.Startup) == 0 {
			continue
		}
		p("| %s | `%s`, %.1f MB | %s (%s – %s) | %s | %s | %s |\n", s.Name, filepath.Base(s.Binary), float64(s.Size)/1e6, ms(s.Startup[len(s.Startup)/2]), ms(s.Startup[0]), ms(s.Startup[len(s.Startup)-1]),
			mib(s.IdleRSS.RSS), mib(s.AfterLoad.RSS), mib(s.AfterLoad.HWM))
	}
}

func statuses(m map[int]int) string {
	var codes []int
	for c := range m {
		codes = append(codes, c)
	}
	slices.Sort(codes)
	var parts []string
	for _, c := range codes {
		name := strconv.Itoa(c)
		if c == 0 {
			name = "no answer"
		}
		parts = append(parts, fmt.Sprintf("%s × %d", name, m[c]))
	}
	return strings.Join(parts, ", ")
}

func (r report) largest(p printer) {
	if len(r.Largest) == 0 {
		return
	}
	p("\n### The largest admissible Pod, concurrently\n\nA Pod of one container with 100,000-odd env entries (just under the apiserver's 3 MiB request limit) and MySQL's port, so our webhook patches it. For each level a fresh server (no cluster connection, Go's default GC settings and no `GOMEMLIMIT` unless the environment sets one) gets %d of them from each of c concurrent clients; peak RSS is its VmHWM afterwards. A refusal (429, 503, 413) is an answer, not an error.\n\n", largestRequestsPerClient)
	p("| server | concurrent | answers | p50 | CPU/request | RSS idle | peak RSS | peak − idle |\n|---|---:|---|---:|---:|---:|---:|---:|\n")
	for _, run := range r.Largest {
		p("| %s | %d | %s | %s | %s | %s | %s | %s |\n", run.Server, run.Concurrency, statuses(run.Statuses), ms(run.Result.Percentile(0.5)),
			ms(time.Duration(div(float64(run.CPU), float64(run.Result.Requests)))), mib(run.Idle.RSS), mib(run.After.HWM), mib(run.After.HWM-min(run.After.HWM, run.Idle.RSS)))
	}
	for _, role := range []string{roleOurs, roleOursLimited} {
		f, ok := r.largestFit(role)
		if !ok {
			continue
		}
		name := f.Max.Server
		p("\n%s: peak ≈ %s + %s × concurrent largest requests (least squares)", name, mib(uint64(max(0, f.Base))), mib(uint64(max(0, f.PerRequest))))
		if c := r.Chart; c.Limit > 0 {
			fits := 0
			for _, run := range r.Largest {
				if run.Role == role && run.After.HWM <= uint64(c.Limit) && run.Statuses[0] == 0 {
					fits = max(fits, run.Concurrency)
				}
			}
			if fits > 0 {
				p("; under the chart's memory limit (%s, `%s`) up to %d at once of the levels measured", c.LimitS, c.File, fits)
			} else {
				p("; **over the chart's memory limit** (%s, `%s`) at every level measured", c.LimitS, c.File)
			}
		}
		p(".\n")
	}
	if c := r.Chart; c.Request > 0 {
		p("\nThe chart requests %s; the idle RSS above is what a Pod uses between admissions.\n", c.RequestS)
	}
}

func (r report) pods(p printer) {
	if len(r.Pods) == 0 {
		return
	}
	p("\n### Creating Pods through a real kube-apiserver\n\netcd + kube-apiserver of the e2e harness; each Pod declares containerPort 3306, so our webhook patches every one (opaque-ports), and so does the patching no-op, with the same patch precomputed. %d concurrent clients; the webhooks are registered with `failurePolicy: Fail` so a failed call would show as an error. Our webhook and the no-ops run throughout and are registered in turn, %d rounds; Kyverno registers itself, so its rounds come after. Webhook CPU/Pod is the webhook process's CPU time over the run divided by the Pods.\n\n", r.PodWorkers, r.PodRounds)
	pm := r.podMedians()
	none, patching := findPod(pm, "no webhook"), findPod(pm, "patching no-op")
	p("| admission | rounds | Pods | errors | patched | median total | min – max | per Pod | × no webhook | overhead over no webhook | × patching no-op | webhook CPU/Pod |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, m := range pm {
		rn, ov, rp := "–", "–", "–"
		if none != nil {
			rn, ov = x(ratio(m.Elapsed, none.Elapsed)), msString(m.Elapsed-none.Elapsed)
		}
		if patching != nil {
			rp = x(ratio(m.Elapsed, patching.Elapsed))
		}
		cpu := "–"
		if m.CPUPerPod > 0 {
			cpu = us(m.CPUPerPod)
		}
		per := time.Duration(0)
		if m.Pods > 0 {
			per = m.Elapsed * time.Duration(m.Rounds) / time.Duration(m.Pods)
		}
		p("| %s | %d | %d | %d | %d | %s | %s – %s | %s | %s | %s | %s | %s |\n", m.Variant, m.Rounds, m.Pods, m.Errors, m.Patched, ms(m.Elapsed), ms(m.Min), ms(m.Max), ms(per), rn, ov, rp, cpu)
	}
	p("\nEvery round:\n\n| round | admission | Pods | errors | patched | total | webhook CPU |\n|---:|---|---:|---:|---:|---:|---:|\n")
	for _, run := range r.Pods {
		if run.Err != "" {
			continue
		}
		p("| %d | %s | %d | %d | %d | %s | %s |\n", run.Round, run.Variant, run.Pods, run.Errors, run.Patched, ms(run.Elapsed), ms(run.CPU))
	}
}

func (r report) profiles(p printer) {
	if len(r.Profiles) == 0 {
		return
	}
	p("\n### Where the time goes: CPU profiles of `Handler/Deployment`\n\n`go test -bench 'Handler$/^Deployment$' -cpuprofile`, then `go tool pprof -top -cum` (the first entries by cumulative share: what each call costs with all it calls), captured by this run.\n")
	for _, pr := range r.Profiles {
		label := pr.Label
		switch {
		case label == "before" && r.Baseline != "":
			label = "Before, at the baseline `" + r.Baseline + "`"
		case label == "after" && r.Commit != "":
			label = "After, at `" + r.Commit + "`"
		}
		p("\n%s:\n\n```\n%s\n```\n", label, strings.TrimRight(pr.Top, "\n"))
	}
}

func (r report) peers(p printer) {
	p("\n### Peers\n\n")
	peerMeasured := false
	for _, run := range r.Pods {
		switch {
		case run.Err != "":
			first, _, _ := strings.Cut(run.Err, "\n")
			p("%s side by side: could not run here: %s\n\n", run.Variant, first)
			peerMeasured = true
		case strings.HasPrefix(run.Variant, "Kyverno") && !peerMeasured:
			p("%s side by side: measured above, in the Pod-creation table (same apiserver, same Pods, a ClusterPolicy making the same mutation).\n\n", run.Variant)
			peerMeasured = true
		}
	}
	if !peerMeasured && r.KyvernoNote != "" {
		p("Kyverno side by side: %s\n\n", r.KyvernoNote)
	}
	if ours := r.run(roleOurs, targetConcurrency); ours != nil {
		p("Kyverno publishes an average of %.1f ms per admission request for 1 replica at 100 virtual users; our mean at %d clients here is %s (different hardware and load shape: an order of magnitude, not a ranking). Linkerd's proxy injector requests %d MiB of memory; ours peaked at %s under load.\n",
			publishedKyvernoMs, targetConcurrency, ms(mean(ours.Latencies)), linkerdInjectorMiB, mib(r.server(roleOurs).AfterLoad.HWM))
	}
}

func (r report) hostile(p printer) {
	if len(r.Hostile) == 0 && r.Stall == nil {
		return
	}
	p("\n### The inputs of issue #17\n\nEach sent once to a fresh `serve` (the client waits up to %s for the answer); server CPU is the process's CPU time from the request until it stopped working (watched up to %s more: a request the client gave up on may still be evaluated); RSS is VmHWM afterwards.\n\n", hostileTimeout, hostileSettle)
	p("| input | object bytes | answer | wall | server CPU | peak RSS | ≤ %s CPU, answered%s |\n|---|---:|---|---:|---:|---:|---|\n", hostileCPU, " (malformed: 400 with the path)")
	for _, h := range r.Hostile {
		cpu := ms(h.CPU)
		if h.Busy {
			cpu = "> " + cpu + " (still working)"
		}
		p("| %s | %d | %s | %s | %s | %s | %s |\n", h.Input, h.Bytes, strings.ReplaceAll(h.Status, "|", "\\|"), ms(h.Wall), cpu, mib(h.Peak.HWM), met(h.met()))
	}
	if s := r.Stall; s != nil {
		p("\n%d clients each sent the headers and %d bytes of a %d-byte body, then nothing: ", s.Clients, stallSent, stallBody)
		if len(s.Dropped) > 0 {
			p("%d dropped by the server after %s (median; %s – %s)", len(s.Dropped), ms(s.Dropped[len(s.Dropped)/2]), ms(s.Dropped[0]), ms(s.Dropped[len(s.Dropped)-1]))
		}
		if s.Held > 0 {
			if len(s.Dropped) > 0 {
				p(", ")
			}
			p("**%d still held after %s**", s.Held, stallWait)
		}
		if s.Held == 0 {
			p(" (met: every stalled body dropped)")
		} else {
			p(" (**missed**: stalled bodies are not dropped)")
		}
		p("; the server's RSS while they stalled peaked at %s.\n", mib(s.RSS.RSS))
	}
}

// targets17 is the summary of issue #17's "done when", each row computed
// from the measurements below it.
func (r report) targets17(p printer, gs []growth) {
	p("| target | measured | |\n|---|---|---|\n")
	if len(gs) > 0 {
		linear, worst := 0, gs[0]
		for _, g := range gs {
			if g.Exponent <= linearExponent {
				linear++
			}
			if g.Exponent > worst.Exponent {
				worst = g
			}
		}
		p("| time linear in the object's size (fitted exponent ≤ %.1f) | %d of %d families × paths; the steepest: %s through %s, %.2f | %s |\n",
			linearExponent, linear, len(gs), worst.Family.Name, worst.Path, worst.Exponent, met(linear == len(gs)))
	}
	var inputs, inputsOK, shapes, shapesOK int
	for _, h := range r.Hostile {
		if h.Path != "" {
			shapes++
			if h.met() {
				shapesOK++
			}
			continue
		}
		inputs++
		if h.met() {
			inputsOK++
		}
	}
	if inputs > 0 {
		p("| each large input of the issue answered (or refused) within %s of the server's CPU | %d of %d | %s |\n", hostileCPU, inputsOK, inputs, met(inputsOK == inputs))
	}
	if shapes > 0 {
		p("| malformed shapes answered 400 naming the field path | %d of %d | %s |\n", shapesOK, shapes, met(shapesOK == shapes))
	}
	if s := r.Stall; s != nil {
		p("| stalled bodies dropped by the server (within %s) | %d of %d | %s |\n", stallWait, len(s.Dropped), s.Clients, met(s.Held == 0))
	}
	if c := r.Chart; c.Limit > 0 {
		levels, under := 0, 0
		var peak uint64
		for _, run := range r.Largest {
			if run.Role != roleOurs {
				continue
			}
			levels++
			peak = max(peak, run.After.HWM)
			if run.After.HWM <= uint64(c.Limit) {
				under++
			}
		}
		if levels > 0 {
			p("| the largest admissible Pods, at every concurrency measured, under the chart's memory limit (%s) | %d of %d levels; highest peak %s | %s |\n", c.LimitS, under, levels, mib(peak), met(under == levels))
		}
	}
	p("\n")
}
