#include "dataplane/test_run.hpp"

#include "common/fd.hpp"
#include "dataplane/dataplane.hpp"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <fmt/format.h>
#include <linux/bpf.h>
#include <net/if.h>

#include <cerrno>
#include <cstring>

namespace xpmip::dataplane {

Hook parse_hook(const std::string& s) {
    if (s == "xdp") return Hook::Xdp;
    if (s == "tc-ingress") return Hook::TcIngress;
    if (s == "tc-egress") return Hook::TcEgress;
    throw DataplaneError(fmt::format("hook '{}' is not xdp, tc-ingress or tc-egress", s));
}

namespace {

UniqueFd attached_program(int ifindex, Hook hook, const std::string& ifname) {
    std::uint32_t prog_id = 0;
    if (hook == Hook::Xdp) {
        bpf_xdp_query_opts q;
        std::memset(&q, 0, sizeof q);
        q.sz = sizeof q;
        if (bpf_xdp_query(ifindex, 0, &q) == 0) {
            prog_id = q.drv_prog_id ? q.drv_prog_id : q.skb_prog_id;
        }
    } else {
        bpf_tc_hook h;
        std::memset(&h, 0, sizeof h);
        h.sz = sizeof h;
        h.ifindex = ifindex;
        h.attach_point = hook == Hook::TcIngress ? BPF_TC_INGRESS : BPF_TC_EGRESS;
        bpf_tc_opts o;
        std::memset(&o, 0, sizeof o);
        o.sz = sizeof o;
        o.handle = kTcHandle;
        o.priority = 1;
        if (bpf_tc_query(&h, &o) == 0) {
            prog_id = o.prog_id;
        }
    }
    if (!prog_id) {
        throw DataplaneError(fmt::format("interface {} has no xpmip program on that hook", ifname));
    }
    UniqueFd fd(bpf_prog_get_fd_by_id(prog_id));
    if (!fd) {
        throw DataplaneError(fmt::format("program {}: {}", prog_id, std::strerror(errno)));
    }
    return fd;
}

} // namespace

TestRunResult test_run(const std::string& ifname, Hook hook, const std::vector<std::uint8_t>& packet,
                       std::uint32_t repeat) {
    const int ifindex = static_cast<int>(if_nametoindex(ifname.c_str()));
    if (!ifindex) {
        throw DataplaneError(fmt::format("interface '{}' does not exist", ifname));
    }
    const auto prog = attached_program(ifindex, hook, ifname);
    std::vector<std::uint8_t> out(packet.size() + 512);
    bpf_test_run_opts opts;
    std::memset(&opts, 0, sizeof opts);
    opts.sz = sizeof opts;
    opts.data_in = packet.data();
    opts.data_size_in = static_cast<std::uint32_t>(packet.size());
    opts.data_out = out.data();
    opts.data_size_out = static_cast<std::uint32_t>(out.size());
    opts.repeat = repeat;
    xdp_md xctx{};
    __sk_buff sctx{};
    if (hook == Hook::Xdp) {
        xctx.data_end = static_cast<std::uint32_t>(packet.size());
        xctx.ingress_ifindex = static_cast<std::uint32_t>(ifindex);
        opts.ctx_in = &xctx;
        opts.ctx_size_in = sizeof xctx;
    } else {
        sctx.ifindex = static_cast<std::uint32_t>(ifindex);
        opts.ctx_in = &sctx;
        opts.ctx_size_in = sizeof sctx;
    }
    if (bpf_prog_test_run_opts(prog.get(), &opts) != 0) {
        throw DataplaneError(fmt::format("BPF_PROG_TEST_RUN on {}: {}", ifname, std::strerror(errno)));
    }
    out.resize(opts.data_size_out);
    return TestRunResult{opts.retval, out, opts.duration};
}

} // namespace xpmip::dataplane
