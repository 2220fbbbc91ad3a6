package storetest

import "testing"

func TestBackendsOpen(t *testing.T) {
	for _, b := range Backends() {
		t.Run(b.Name, func(t *testing.T) {
			s := b.Open(t)
			if err := s.Health(t.Context()); err != nil {
				t.Fatal(err)
			}
		})
	}
}
