package tpm12

type getRandomIn struct{ BytesRequested uint32 }

func (g *getRandomIn) unmarshal(r *reader) { g.BytesRequested = r.u32() }

// getRandom is TPM_GetRandom, Part 3 §13.6: at most what fits in one
// response.
func (t *TPM) getRandom(_ *call, in *getRandomIn) (*sizedOut, error) {
	n := min(in.BytesRequested, randomMax)
	b := make([]byte, n)
	t.randBytes(b)
	return &sizedOut{Data: b}, nil
}
