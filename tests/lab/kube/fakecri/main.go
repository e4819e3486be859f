// fakecri serves the fake CRI runtime from k8s.io/cri-client/pkg/fake (the one kubemark
// uses) on a unix socket, so that a real kubelet can start and register its Node without
// a container runtime. Pods scheduled to that node are only pretended: no process runs.
//
// Built by tests/lab/kube/build.sh into the lab's cache, never into the repo.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	kubeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/cri-client/pkg/fake"
)

func main() {
	listen := flag.String("listen", "/run/fakecri/fakecri.sock",
		"unix socket to serve the CRI on (a path, or unix:///path)")
	cgroupDriver := flag.String("cgroup-driver", "cgroupfs",
		"cgroup driver reported to the kubelet through RuntimeConfig: cgroupfs or systemd")
	imageSize := flag.Uint64("image-size", 1<<20,
		"size in bytes reported for every pulled image (the kubelet refuses images of size 0)")
	flag.Parse()

	endpoint := *listen
	if !strings.HasPrefix(endpoint, "unix://") {
		endpoint = "unix://" + endpoint
	}
	var driver kubeapi.CgroupDriver
	switch *cgroupDriver {
	case "cgroupfs":
		driver = kubeapi.CgroupDriver_CGROUPFS
	case "systemd":
		driver = kubeapi.CgroupDriver_SYSTEMD
	default:
		fmt.Fprintf(os.Stderr, "fakecri: --cgroup-driver must be cgroupfs or systemd, not %q\n", *cgroupDriver)
		os.Exit(2)
	}

	runtime := fake.NewFakeRemoteRuntime()
	// Kubelets ask the runtime which cgroup driver to use; the fake answers nil unless told.
	runtime.RuntimeService.FakeLinuxConfiguration = &kubeapi.LinuxRuntimeConfiguration{CgroupDriver: driver}
	// PullImage records any image under its own name; with size 0 the kubelet fails the
	// container with ImageInspectError ("Id or size of image ... is not set").
	runtime.ImageService.SetFakeImageSize(*imageSize)
	// Start also marks RuntimeReady and NetworkReady true.
	if err := runtime.Start(endpoint); err != nil {
		fmt.Fprintf(os.Stderr, "fakecri: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("fakecri: serving the fake CRI on %s (cgroup driver %s)\n", endpoint, *cgroupDriver)

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	sig := <-signals
	runtime.Stop()
	_ = os.Remove(strings.TrimPrefix(endpoint, "unix://"))
	fmt.Printf("fakecri: stopped on %s\n", sig)
}
