# xenvtpm — build, test and demo entry points.
#
#   make images    build every domain image into $(OUT) and list them
#   make test      every test tier (what CI runs): unit tests always; image
#                  builds, QEMU and Xen test-bed tiers when the tamago-go
#                  toolchain is there (otherwise one SKIP: line each);
#                  TESTBED=PATTERNS runs only the test-bed scenarios they
#                  select (README.md, "Test tiers")
#   make testbed   the Xen test bed's first check: the hello domain
#   make demo      the main job: the whole stack on Xen under QEMU — swtpm as
#                  the hardware TPM, the manager domain, a vTPM domain, a Linux
#                  guest running tpm2-tools, state kept across restarts; one
#                  line per step, the full serial log in a file (VERBOSE=1
#                  streams it; DEMO_TPM=1.2: the hardware TPM is a TPM 1.2)
#   make docs      regenerate docs/options.md, every image's extra= options,
#                  from the images' cmdline.Spec (a unit test fails while
#                  the file and the Specs differ)
#   make toolchain install tamago-go for go.mod's tamago version from a local
#                  clone (TAMAGO_GO_SRC=path-to-a-tamago-go-git-repository)
#
# images, test, testbed and demo install tamago-go with `go tool tamago` when
# it is missing and GitHub can be reached (build/toolchain.sh ensure).

OUT      ?= out
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
TAMAGO   := $(shell go tool -n tamago 2>/dev/null)
GOENV    := GOOS=tamago GOARCH=amd64 GOOSPKG=github.com/usbarmory/tamago
# linkcpuinit: board/xen/pvh brings its own PVH entry; linkramstart: RAM from
# 1 MiB, so small domains fit. The image is linked just above it.
TAGS     := linkcpuinit,linkramstart
LDFLAGS  := -T 0x00110000 -R 0x1000 -X main.Version=$(VERSION)
IMAGES   := hello vtpmdomain tisxen blktest mgrdomain mgrclient hostilefront

# An image's main package: build/NAME for test images, else ./NAME.
pkg = $(if $(wildcard build/$(1)/main.go),./build/$(1),./$(1))

.PHONY: all images test unit docs toolchain-check testbed demo toolchain clean FORCE
all: images

toolchain-check:
	@build/toolchain.sh ensure

images: toolchain-check $(addprefix $(OUT)/,$(IMAGES))
	@for i in $(IMAGES); do ls -l $(OUT)/$$i; done

$(OUT)/%: FORCE
	@mkdir -p $(dir $@)
	$(GOENV) $(TAMAGO) build -tags $(TAGS) -trimpath -ldflags "$(LDFLAGS)" -o $@ $(call pkg,$*)
	go run ./build/imgtrim $@

unit:
	go vet ./...
	go test -race -count=1 ./...

test:
	build/test-all.sh

docs:
	go run ./cmdline/gendoc

testbed: toolchain-check
	build/testbed/host-deps.sh
	build/testbed/run.sh build/hello/testbed

DEMO_TPM ?= 2.0
demo_scenario = $(if $(filter 1.2,$(DEMO_TPM)),vtpmdomain/testbed-persist-tpm12,vtpmdomain/testbed-persist)

# VERBOSE=1 streams the serial console; otherwise run.sh --story prints one
# line per step of the scenario, its figures and the verdict.
VERBOSE ?=
demo_mode = $(if $(filter-out 0,$(VERBOSE)),,--story)

demo: toolchain-check
	@build/testbed/host-deps.sh tpm2-tools swtpm-tools
	@build/testbed/run.sh $(demo_mode) $(demo_scenario)

toolchain:
	build/toolchain.sh install

clean:
	rm -rf $(OUT)
