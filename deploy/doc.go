// Package deploy holds the files that run admitd serve outside a
// checkout: a systemd unit (admitd.service) and a container image
// (Containerfile). It has no Go code; its tests check those files against
// the admitd binary they run.
package deploy
