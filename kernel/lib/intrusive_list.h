// A doubly linked list whose links live inside the elements (run queues, wait queues).
#pragma once

#include <stddef.h>

namespace kiln {

struct ListNode {
    ListNode* prev = nullptr;
    ListNode* next = nullptr;
    bool linked() const { return next != nullptr; }
};

template <typename T, ListNode T::*Link>
class IntrusiveList {
  public:
    IntrusiveList() { head_.prev = head_.next = &head_; }
    IntrusiveList(const IntrusiveList&) = delete;
    IntrusiveList& operator=(const IntrusiveList&) = delete;

    bool empty() const { return head_.next == &head_; }

    void push_back(T& item) {
        ListNode& n = item.*Link;
        n.prev = head_.prev;
        n.next = &head_;
        head_.prev->next = &n;
        head_.prev = &n;
    }

    static void remove(T& item) {
        ListNode& n = item.*Link;
        if (!n.linked()) return;
        n.prev->next = n.next;
        n.next->prev = n.prev;
        n.prev = n.next = nullptr;
    }

    T* front() { return empty() ? nullptr : owner(head_.next); }

    T* pop_front() {
        T* item = front();
        if (item) remove(*item);
        return item;
    }

    // Calls f(T&) for each element; f may remove the element it is given.
    template <typename F>
    void for_each(F f) {
        for (ListNode* n = head_.next; n != &head_;) {
            ListNode* next = n->next;
            f(*owner(n));
            n = next;
        }
    }

  private:
    static T* owner(ListNode* n) {
        // offsetof for a member pointer: the distance of the link inside a T.
        const size_t offset = reinterpret_cast<size_t>(&(static_cast<T*>(nullptr)->*Link));
        return reinterpret_cast<T*>(reinterpret_cast<char*>(n) - offset);
    }
    ListNode head_;
};

}  // namespace kiln
